"""The one command that rebuilds the default domain model: ``soaes filters train-default``.

build-trainset (permissive sources only, or ``research`` to add THUCNews/FewCLUE) → train with the
hyper-parameters below → calibrate on the validation split → evaluate on the held-out instruction
set, whose figures are stored in the sidecar (``heldout``). fastText is trained single-threaded
with a fixed seed, so the result is reproducible on one machine.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .model import SHIPPED_MODEL, sidecar_path

# See docs/filters.md for how these were chosen: character uni- and bigrams of the first 128 Chinese
# characters/Latin letters, 16 dimensions, 60 k n-gram buckets, unquantized (quantized models
# predict ~3x slower) — 4.1 MB, ≥ 50 k samples/s per core.
DEFAULT_PARAMS: dict[str, Any] = dict(features="char", max_chars=128, dim=16, epoch=25, lr=0.5, word_ngrams=2,
                                      bucket=60_000, min_count=2, quantize=False, balance=False, threads=1, seed=0)
TRAINSET_PARAMS: dict[str, Any] = dict(max_law=3000, law_chunks_per_doc=2)
RESEARCH_MODEL = Path("build") / "models" / "domain_zh_research.bin"  # git-ignored: never committed


def train_default_model(data: str | Path, output: str | Path | None = None, research: bool = False,
                        workdir: str | Path = "build/domain_trainset", **overrides: Any) -> dict[str, Any]:
    from .model import DomainModel
    from .train import evaluate, read_labelled, train
    from .trainset import build_trainset

    output = Path(output) if output else (RESEARCH_MODEL if research else SHIPPED_MODEL)
    work = Path(workdir) / ("research" if research else "shipped")
    build = build_trainset(data, work, research=research, **TRAINSET_PARAMS)
    params = {**DEFAULT_PARAMS, **overrides}
    side = train(work / "train.jsonl", output, work / "valid.jsonl",
                 description={"builder": build, "research": research,
                              "licence_note": ("trained on sets without a stated licence: do not redistribute"
                                               if research else "trained only on redistributable sources "
                                               "(statutes/State Council documents: PRC Copyright Law Art. 5; "
                                               "Apache-2.0; ODC-By — see docs/filters.md)")},
                 **params)
    model = DomainModel(output)
    held = evaluate(model, read_labelled(work / "heldout.jsonl"))
    side["heldout"] = {"file": str(work / "heldout.jsonl"), "binary_in": held["binary_in"], "n": held["n"]}
    sidecar_path(output).write_text(json.dumps(side, ensure_ascii=False, indent=2), encoding="utf-8")
    return {"model": str(output), "bytes": side["model_bytes"], "threshold": side["threshold"],
            "train": build["train"], "removed_from_training": build["removed_from_training"],
            "heldout_binary_in": held["binary_in"]}
