"""The one command that rebuilds the default domain model: ``soaes filters train-default`` (needs ../shared/data).

Data (``families.py``): every labelled set in ../shared/data grouped by source family — news
titles (THUCNews, TNEWS), exam questions (DISC-Law MCQ, LawBench MCQ, BELLE exam-like items),
scientific abstracts (CSLDCP, 67 disciplines), app descriptions (IFLYTEK), instructions
(DISC-Fin/Law, LawBench consultations, medical, BELLE), statutes/policy (LawRefBook, gov.cn) —
plus lexicon-prior pseudo-negatives from the unlabelled instruction pools (Alpaca-zh, LLaMA-Factory
demo, ShareGPT: records without a single domain keyword → ``other``). Recipe ``ours_chat``
(``lofo.DEFAULT_RECIPE``, ``lofo.recipe_ours``): at most 3000 records per source, each also shown in
every other form (title / question / multiple choice / a first-person consultation, ``augment.py``),
fastText on character uni+bigrams of the
first 128 Chinese characters/letters (dim 16, 60 k buckets, 25 epochs, lr 0.5), single-threaded and
seeded (reproducible on one machine). 15 % of the family records (id hash) are validation only.

Licence (``licences.py``): ``licence="permissive"`` (the default, the shipped model) keeps only the
folders the data README lists as committable — no news titles, abstracts, app descriptions,
Alpaca-zh or LLaMA-Factory pseudo-negatives; ``"any"`` is the research model described above, for
the user's own use, never written over the shipped path.

Threshold: by default the mean per-family validation F1 (in-distribution); ``threshold_from`` takes
the threshold that ``benchmarks/domain_lofo.py`` chose for the recipe on the held-out families'
dev splits (the value that carries to unseen families), and the sidecar says which rule was used.
Stacking (``stack.py``): the newest version that JSON has out-of-family rows for; v4 also mines the
lexicon prior (``mined.py``) from the same training records and writes it beside the model
(``<model>.mined.npz``).
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
LICENCE_NOTES = {
    "permissive": ("trained only on ../shared/data folders its README lists as committable (statutes and State "
                   "Council documents outside copyright, Apache-2.0, ODC-By; LawBench/DISC eval sets capped to "
                   "samples): see data.sources and filters/domain/licences.py"),
    "any": ("RESEARCH MODEL, DO NOT REDISTRIBUTE: trained on every labelled set in ../shared/data, including "
            "THUCNews and FewCLUE (no licence stated) and pseudo-labels of Alpaca-zh / LLaMA-Factory demo "
            "(CC-BY-NC upstream) and a copyrighted textbook"),
}


def train_default_model(data: str | Path, output: str | Path | None = None, threshold_from: str | Path | None = None,
                        threshold: float | None = None, recipe: str | None = None, licence: str = "permissive",
                        stack: bool = True, **overrides: Any) -> dict[str, Any]:
    from corpora_manifests.errors import UserError

    from .families import in_valid, iter_family_records, iter_unlabelled, pseudo_negatives
    from .licences import LICENCE_CHOICES, select, sources_summary
    from .lofo import DEFAULT_RECIPE, IN_LABELS, RECIPES, bootstrap_prf, fit

    if licence not in LICENCE_CHOICES:
        raise UserError(f"--licence must be one of {', '.join(LICENCE_CHOICES)}, not {licence!r}")
    recipe = recipe or DEFAULT_RECIPE
    if recipe not in RECIPES:
        raise UserError(f"--recipe must be one of {', '.join(RECIPES)}, not {recipe!r}")
    output = Path(output) if output else SHIPPED_MODEL
    if licence != "permissive" and output.resolve() == SHIPPED_MODEL.resolve():
        # the committed model is redistributed with the project: it may hold only committable sources
        raise UserError("--licence any builds a research model that must not be redistributed: "
                        "give it its own --output, not the shipped filters/models/domain_zh.bin")
    records = select(list(iter_family_records(data)) + pseudo_negatives(list(iter_unlabelled(data, licence=licence))),
                     licence)
    train_recs = [r for r in records if not in_valid(r["id"])]
    valid_recs = [r for r in records if in_valid(r["id"]) and r["family"] != "pool_pseudo"]
    lofo = None
    if threshold_from:
        p = Path(threshold_from)
        if not p.exists():
            raise UserError(f"--threshold-from: {p} not found (run benchmarks/domain_lofo.py --json {p})")
        lofo = json.loads(p.read_text(encoding="utf-8"))
        if lofo.get("licence", "any") != licence:  # a threshold tuned for models trained on other data
            raise UserError(f"{p} was run with --licence {lofo.get('licence', 'any')}, not {licence}: "
                            f"run benchmarks/domain_lofo.py --licence {licence} --json {p}")
    model = fit(recipe, train_recs, valid_recs, output, **overrides)
    side = model.info
    rule = "mean per-family validation F1 (in-distribution)"
    system = recipe
    if stack:  # stacking weights (stack.py); the threshold then applies to the stacked score
        from . import stack as stacking

        # the newest stacking version the LOFO run has out-of-family rows for (keyed by system; a JSON
        # written before v3 keys its v2 rows by the recipe)
        all_rows = (lofo or {}).get("stack_rows", {})
        version = next((v for v in ("4", "3", "2") if f"{recipe}+stack{v}" in all_rows), "")
        rows = all_rows.get(f"{recipe}+stack{version}") or all_rows.get(recipe)
        names = {"4": stacking.FEATURES_V4, "3": stacking.FEATURES_V3}.get(
            version, stacking.FEATURES_V2 if rows else stacking.FEATURES)
        mined = None
        if version == "4":  # the lexicon is mined from the same training records as the fastText model
            from .mined import mine

            mined, mined_name = mine(train_recs, lambda lab: lab in IN_LABELS), output.stem + ".mined.npz"
            mined.save(output.parent / mined_name)
        fit_recs = [] if mined is not None else valid_recs  # v4 is fit on the out-of-family rows alone
        texts = [r["text"] for r in fit_recs]
        w = stacking.fit(model.raw_p_in(texts) if texts else [], texts, [r["label"] in IN_LABELS for r in fit_recs],
                         [r["family"] for r in fit_recs], names=names, rows=rows)
        src = Path(threshold_from).name if threshold_from else ""
        side["stack"] = {"weights": w, "features": list(names), "fit_on": (
            f"the out-of-family dev rows of every held-out family ({src}: each scored by the fastText model and "
            "mined lexicon that never saw it), each group x class weighted equally" if version == "4" else
            "validation records of every family plus the out-of-family dev rows of every held-out family "
            f"({src}: each scored by the model that never saw it), each group x class "
            "weighted equally" if rows else "validation records of every family, each family x class weighted equally")}
        if mined is not None:
            side["stack"]["mined"] = mined_name
            side["stack"]["mined_meta"] = mined.meta
        model.info = side
        system = recipe + (f"+stack{version}" if version else "+stack")
        side["threshold"] = model.threshold = 0.5 if not threshold_from and threshold is None else model.threshold
    if lofo is not None:
        t = lofo.get("thresholds", {}).get(system)
        if not t:
            raise UserError(f"{p} has no threshold for system {system!r} (run it with --systems ...,{system})")
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
                    "licence": licence, "sources": sources_summary(records),
                    "licence_note": LICENCE_NOTES[licence]}
    sidecar_path(output).write_text(json.dumps(side, ensure_ascii=False, indent=2), encoding="utf-8")
    return {"model": str(output), "licence": licence, "bytes": side["model_bytes"], "threshold": side["threshold"],
            "threshold_rule": rule, "records": side["data"]["records"],
            "valid_by_family_f1": {f: m["f1"] for f, m in side["valid"]["by_family"].items()}}
