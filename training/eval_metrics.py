"""Chinese generation metrics, stated precisely because conventions differ:

- ROUGE-1/2/L: F1 on jieba words (``rouge-chinese``), per sample, averaged, ×100 — as LLaMA-Factory
  computes them; an empty prediction or reference scores 0.
- BLEU-4: corpus BLEU on characters (``sacrebleu``, ``tokenize="zh"``), ×100.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable


@dataclass
class Pair:
    id: str
    prediction: str
    reference: str


@dataclass
class LoadResult:
    pairs: list[Pair] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)


_PRED_KEYS = ("prediction", "predict", "output")
_REF_KEYS = ("reference", "label", "answer")


def _first(rec: dict, keys: Iterable[str]):
    for k in keys:
        if isinstance(rec.get(k), str):
            return rec[k]
    return None


def load_pairs(predictions: Path, references: dict[str, str] | None = None) -> LoadResult:
    """Read a predictions JSONL (LLaMA-Factory's ``predict``/``label`` keys are accepted).

    With ``references`` (id → text, e.g. from an eval manifest), records are matched by ``id``.
    Unreadable lines and records without a prediction or a reference are rejected with a reason.
    """
    from corpora_manifests.jsonl import iter_jsonl

    out = LoadResult()
    for n, rec, problem in iter_jsonl(predictions):
        if problem is not None:
            out.rejected.append({"line": n, "reason": "unreadable_record", "detail": problem})
            continue
        rid = str(rec.get("id", n))
        pred = _first(rec, _PRED_KEYS)
        ref = references.get(rid) if references is not None else _first(rec, _REF_KEYS)
        if pred is None:
            out.rejected.append({"line": n, "id": rid, "reason": "no_prediction"})
        elif ref is None:
            out.rejected.append({"line": n, "id": rid, "reason": "no_reference"})
        else:
            out.pairs.append(Pair(rid, pred, ref))
    return out


def references_from_eval_manifest(directory: Path, split: str | None = None) -> dict[str, str]:
    """id → last assistant message of every record of an eval/SFT manifest (shards verified)."""
    from corpora_manifests.errors import UserError
    from corpora_manifests.models import load_manifest
    from corpora_manifests.shards import iter_rows, verify_manifest

    manifest = load_manifest(directory)
    if problems := verify_manifest(directory, manifest):
        raise UserError("eval manifest failed verification: " + "; ".join(map(str, problems)))
    refs = {}
    for row in iter_rows(directory, manifest, split=split, columns=["id", "messages"]):
        answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        if answers:
            refs[row["id"]] = answers[-1]
    return refs


def compute_metrics(pairs: list[Pair]) -> dict[str, float]:
    import jieba
    import sacrebleu
    from rouge_chinese import Rouge

    jieba.setLogLevel(60)
    rouge = Rouge()
    sums = {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    for p in pairs:
        hyp = " ".join(jieba.cut(p.prediction.strip()))
        ref = " ".join(jieba.cut(p.reference.strip()))
        if not hyp.strip() or not ref.strip():
            continue
        score = rouge.get_scores(hyp, ref)[0]
        for k in sums:
            sums[k] += score[k]["f"]
    n = max(len(pairs), 1)
    bleu = sacrebleu.corpus_bleu([p.prediction for p in pairs], [[p.reference for p in pairs]], tokenize="zh")
    return {
        "rouge-1": round(100 * sums["rouge-1"] / n, 4),
        "rouge-2": round(100 * sums["rouge-2"] / n, 4),
        "rouge-l": round(100 * sums["rouge-l"] / n, 4),
        "bleu-4": round(bleu.score, 4),
        "n": len(pairs),
    }
