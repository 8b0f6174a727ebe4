"""The one command that rebuilds the default domain model: ``soaes filters train-default`` (needs ../shared/data).

Data (``families.py``): every labelled set in ../shared/data grouped by source family — news
titles (THUCNews, TNEWS), exam questions (DISC-Law MCQ, LawBench MCQ, BELLE exam-like items),
scientific abstracts (CSLDCP, 67 disciplines), app descriptions (IFLYTEK), instructions
(DISC-Fin/Law, LawBench consultations, medical, BELLE), statutes/policy (LawRefBook, gov.cn) —
plus lexicon-prior pseudo-negatives from the unlabelled instruction pools (Alpaca-zh, LLaMA-Factory
demo, ShareGPT: records without a single domain keyword → ``other``). Recipe ``ours``
(``lofo.recipe_ours``): at most 3000 records per source, each also shown in one other form
(title / question / multiple choice, ``augment.py``), fastText on character uni+bigrams of the
first 128 Chinese characters/letters (dim 16, 60 k buckets, 25 epochs, lr 0.5), single-threaded and
seeded (reproducible on one machine). 15 % of the family records (id hash) are validation only.

Threshold: by default the mean per-family validation F1 (in-distribution); ``threshold_from`` takes
the threshold that ``benchmarks/domain_lofo.py`` chose for the recipe on the held-out families'
dev splits (the value that carries to unseen families), and the sidecar says which rule was used.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from .model import SHIPPED_MODEL, sidecar_path

# fastText parameters shared by every recipe (see docs/filters.md for how they were chosen)
DEFAULT_PARAMS: dict[str, Any] = dict(features="char", max_chars=128, dim=16, epoch=25, lr=0.5, word_ngrams=2,
                                      bucket=60_000, min_count=2, quantize=False, balance=False, threads=1, seed=0)
TRAINSET_PARAMS: dict[str, Any] = dict(max_law=3000, law_chunks_per_doc=2)
LICENCE_NOTE = ("trained on every labelled set in ../shared/data, including THUCNews and FewCLUE (no licence "
                "stated) and pseudo-labels of Alpaca-zh (CC-BY-NC upstream): the weights are a statistical "
                "model, not the texts, but check these terms before redistributing the model")


def train_default_model(data: str | Path, output: str | Path | None = None, threshold_from: str | Path | None = None,
                        threshold: float | None = None, recipe: str = "ours", **overrides: Any) -> dict[str, Any]:
    from corpora_manifests.errors import UserError

    from .families import in_valid, iter_family_records, iter_unlabelled, pseudo_negatives
    from .lofo import IN_LABELS, bootstrap_prf, fit

    output = Path(output) if output else SHIPPED_MODEL
    records = list(iter_family_records(data)) + pseudo_negatives(list(iter_unlabelled(data)))
    train_recs = [r for r in records if not in_valid(r["id"])]
    valid_recs = [r for r in records if in_valid(r["id"]) and r["family"] != "pool_pseudo"]
    model = fit(recipe, train_recs, valid_recs, output, **overrides)
    side = model.info
    rule = "mean per-family validation F1 (in-distribution)"
    if threshold_from:
        p = Path(threshold_from)
        if not p.exists():
            raise UserError(f"--threshold-from: {p} not found (run benchmarks/domain_lofo.py --json {p})")
        t = json.loads(p.read_text(encoding="utf-8")).get("thresholds", {}).get(recipe)
        if not t:
            raise UserError(f"{p} has no threshold for recipe {recipe!r}")
        threshold, rule = float(t["threshold"]), f"leave-one-family-out dev splits ({p.name}: mean dev F1 {t['mean_dev_f1']})"
    if threshold is not None:
        side["threshold"] = float(threshold)
        model.threshold = float(threshold)
        if not threshold_from:
            rule = "given on the command line"
    side["threshold_rule"] = rule
    # validation figures per family at the shipped threshold (in-distribution: optimistic by design)
    preds = model.predict([r["text"] for r in valid_recs])
    fams = sorted({r["family"] for r in valid_recs})
    side["valid"]["by_family"] = {
        f: bootstrap_prf([r["label"] in IN_LABELS for r in valid_recs if r["family"] == f],
                         [p.is_in for r, p in zip(valid_recs, preds) if r["family"] == f], 0) for f in fams}
    side["data"] = {"recipe": recipe, "records": dict(Counter(r["family"] for r in records)),
                    "pseudo_negatives": sum(r["family"] == "pool_pseudo" for r in records),
                    "licence_note": LICENCE_NOTE}
    sidecar_path(output).write_text(json.dumps(side, ensure_ascii=False, indent=2), encoding="utf-8")
    return {"model": str(output), "bytes": side["model_bytes"], "threshold": side["threshold"],
            "threshold_rule": rule, "records": side["data"]["records"],
            "valid_by_family_f1": {f: m["f1"] for f, m in side["valid"]["by_family"].items()}}
