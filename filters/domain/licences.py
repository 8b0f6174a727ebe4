"""Which ``../shared/data`` folders a *shipped* (redistributed) model may be trained on.

The table mirrors ``../shared/data/README.md``: its "may be committed" table (statutes and State
Council documents outside copyright, Apache-2.0 and ODC-By sets) is ``permissive``; the folders it
lists as "development and benchmarks only" (no licence stated, CC-BY-NC, copyrighted text) are
not. ``soaes filters train-default`` defaults to ``--licence permissive``, so the committed model in
an Apache-2.0 project is trained from nothing else; ``--licence any`` builds a stronger research
model for the user's own use, which must not be redistributed. Evaluation (``benchmarks/``) may
still read every folder: evaluation data is not redistributed.

Folders the README allows as "small samples only" (LawBench, DISC-Law/Fin eval sets) are
``sample``: a permissive model uses at most ``SAMPLE_CAP`` records of each of their sources.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict

from corpora_manifests.errors import UserError

# folder -> (licence as the data README states it, use: "yes" | "sample" | "no")
FOLDER_LICENCE: dict[str, tuple[str, str]] = {
    "lawrefbook_laws": ("statutes, outside copyright (PRC Copyright Law Art. 5)", "yes"),
    "govcn_policy_html": ("official documents, outside copyright (Art. 5)", "yes"),
    "disc_fin_sft_samples": ("Apache-2.0", "yes"),
    "sharegpt_zh_1k": ("Apache-2.0", "yes"),
    "medical_sft_1k_ood": ("Apache-2.0", "yes"),
    "longwriter_prompts": ("Apache-2.0", "yes"),
    "belle_seed_tasks": ("ODC-By", "yes"),
    "belle_eval_set": ("ODC-By", "yes"),
    "lawbench": ("Apache-2.0 (follow each source's terms)", "sample"),
    "disc_law_eval": ("Apache-2.0", "sample"),
    "disc_fin_eval": ("Apache-2.0", "sample"),
    "thucnews_titles": ("no licence stated", "no"),
    "tnews_fewclue": ("no licence stated", "no"),
    "iflytek_fewclue": ("no licence stated", "no"),
    "csldcp_fewclue": ("no licence stated", "no"),
    "alpaca_zh_carbonz0": ("CC-BY-NC upstream", "no"),
    "llamafactory_demo_sft": ("CC-BY-NC upstream", "no"),
    "mixed_lang_pretrain_text": ("copyrighted text", "no"),
    "firefly_dummy": ("no licence", "no"),
    "html_readability_zh": ("copyrighted page content", "no"),
    "pdf_samples": ("third-party copyrighted documents", "no"),
}
# record ``source`` names (families.py) that are not their folder's name
SOURCE_FOLDER: dict[str, str] = {
    "disc_law_mcq": "disc_law_eval", "disc_law_qa": "disc_law_eval", "lawbench_mcq": "lawbench",
    "lawbench_consult": "lawbench", "belle_eval_exam_like": "belle_eval_set", "belle_eval": "belle_eval_set",
    "belle_seed": "belle_seed_tasks", "disc_fin_sft": "disc_fin_sft_samples", "medical_sft": "medical_sft_1k_ood",
    "govcn_policy": "govcn_policy_html",
}
SAMPLE_CAP = 1000
LICENCE_CHOICES = ("permissive", "any")


def folder_of(source: str) -> str:
    """The ``../shared/data`` folder a record's ``source`` came from (``alpaca_zh_carbonz0:pseudo_other`` → …)."""
    base = source.split(":", 1)[0]
    folder = SOURCE_FOLDER.get(base, base)
    if folder not in FOLDER_LICENCE:  # a new source must be entered in the table before it can be used
        raise UserError(f"source {source!r}: folder {folder!r} is not in filters/domain/licences.py FOLDER_LICENCE")
    return folder


def select(records: list[dict], licence: str) -> list[dict]:
    """The records a model built under ``licence`` may be trained on (``any``: all of them)."""
    if licence not in LICENCE_CHOICES:
        raise UserError(f"--licence must be one of {', '.join(LICENCE_CHOICES)}, not {licence!r}")
    if licence == "any":
        return list(records)
    by_source: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        use = FOLDER_LICENCE[folder_of(r["source"])][1]
        if use != "no":
            by_source[r["source"]].append(r)
    out = []
    for src, rows in by_source.items():
        if FOLDER_LICENCE[folder_of(src)][1] == "sample":  # a deterministic sample by id hash
            rows = sorted(rows, key=lambda r: hashlib.md5(r["id"].encode("utf-8")).hexdigest())[:SAMPLE_CAP]
        out.extend(rows)
    return out


def sources_summary(records: list[dict]) -> dict[str, dict]:
    """``{folder: {licence, use, records}}`` of what went into a model (recorded in its sidecar)."""
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[folder_of(r["source"])] += 1
    return {f: {"licence": FOLDER_LICENCE[f][0], "use": FOLDER_LICENCE[f][1], "records": n}
            for f, n in sorted(counts.items())}
