"""Train, calibrate and evaluate the fastText domain classifier.

Data files are JSON Lines ``{"text": …, "label": …}`` (what ``build-trainset`` writes) or fastText
text lines ``__label__<label> <text>``. Labels are ``finance, law, business, politics, other`` or
binary ``in``/``out``; for binary scoring the four domain labels count as ``in``.

The decision threshold on P(in) is the one that maximises in-domain F1 on the validation split
(a given ``--valid`` file, else a deterministic stratified 10 % of the training file); it is
written to the model's sidecar with the validation metrics.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from corpora_manifests.errors import UserError

from .features import featurise_many
from .model import ALL_LABELS, IN_DOMAIN_LABELS, DomainModel, sidecar_path


def binary(label: str) -> str:
    return "in" if label in IN_DOMAIN_LABELS or label == "in" else "out"


def read_labelled(path: str | Path) -> list[tuple[str, str]]:
    """(text, label) pairs from a JSONL or fastText-format file; bad lines raise a UserError naming them."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"labelled data file not found: {path}")
    out = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith("__label__"):
                label, _, text = line.partition(" ")
                label = label[len("__label__"):]
            else:
                try:
                    rec = json.loads(line)
                    text, label = rec["text"], rec["label"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise UserError(f"{path}:{i}: expected {{\"text\", \"label\"}} JSON or a __label__ line") from None
            if label not in ALL_LABELS:
                raise UserError(f"{path}:{i}: unknown label {label!r}; use {', '.join(ALL_LABELS)}")
            out.append((str(text), str(label)))
    if not out:
        raise UserError(f"{path} holds no labelled examples")
    return out


def split_valid(rows: list[tuple[str, str]], fraction: float = 0.1) -> tuple[list, list]:
    train, valid = [], []
    for text, label in rows:
        h = int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
        (valid if h < fraction else train).append((text, label))
    return train, valid


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def binary_metrics(gold_in: list[bool], pred_in: list[bool]) -> dict[str, Any]:
    tp = sum(g and p for g, p in zip(gold_in, pred_in))
    fp = sum((not g) and p for g, p in zip(gold_in, pred_in))
    fn = sum(g and not p for g, p in zip(gold_in, pred_in))
    tn = len(gold_in) - tp - fp - fn
    return {**prf(tp, fp, fn), "accuracy": round((tp + tn) / max(1, len(gold_in)), 4),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn, "support_in": tp + fn, "support_out": fp + tn}


def calibrate_threshold(gold_in: list[bool], p_in: list[float]) -> tuple[float, float]:
    """Threshold in [0.05, 0.95] maximising in-domain F1: the middle of the best plateau."""
    grid = [k / 100 for k in range(5, 96)]
    f1s = [binary_metrics(gold_in, [p >= t for p in p_in])["f1"] for t in grid]
    best = max(f1s)
    plateau = [t for t, f in zip(grid, f1s) if f >= best - 0.002]
    return plateau[len(plateau) // 2], best


def evaluate(model: DomainModel, rows: list[tuple[str, str]]) -> dict[str, Any]:
    texts = [t for t, _ in rows]
    gold = [l for _, l in rows]
    preds = model.predict(texts)
    gold_binary = all(l in ("in", "out") for l in gold)
    model_binary = set(model.labels) <= {"in", "out"}
    if gold_binary or model_binary:
        pred_lab = ["in" if p.is_in else "out" for p in preds]
        gold_lab = [binary(l) for l in gold]
    else:
        # Multi-class: the top label, except that a sample under the threshold is "other".
        pred_lab = [p.domain for p in preds]
        gold_lab = gold
    classes = sorted(set(gold_lab) | set(pred_lab))
    conf = {g: {p: 0 for p in classes} for g in classes}
    for g, p in zip(gold_lab, pred_lab):
        conf[g][p] += 1
    per_class = {}
    for c in classes:
        tp = conf[c][c]
        fp = sum(conf[g][c] for g in classes if g != c)
        fn = sum(conf[c][p] for p in classes if p != c)
        per_class[c] = {**prf(tp, fp, fn), "support": tp + fn}
    present = [c for c in classes if per_class[c]["support"] > 0]
    out: dict[str, Any] = {
        "n": len(rows),
        "accuracy": round(sum(g == p for g, p in zip(gold_lab, pred_lab)) / max(1, len(rows)), 4),
        "macro_f1": round(sum(per_class[c]["f1"] for c in present) / max(1, len(present)), 4),
        "per_class": per_class,
        "confusion": {"rows_gold_cols_pred": classes, "matrix": [[conf[g][p] for p in classes] for g in classes]},
        "threshold": model.threshold,
    }
    # Binary in-domain scores whenever they make sense (always for in/out data).
    out["binary_in"] = binary_metrics([binary(l) == "in" for l in gold], [p.is_in for p in preds])
    return out


def _write_fasttext(rows: list[tuple[str, str]], features: str, max_chars: int, path: Path) -> None:
    feats = featurise_many([t for t, _ in rows], features, max_chars)
    with path.open("w", encoding="utf-8") as f:
        for (_, label), ft in zip(rows, feats):
            f.write(f"__label__{label} {ft}\n")


def train(train_file: str | Path, output: str | Path, valid_file: str | Path | None = None, *,
          features: str = "char", max_chars: int = 128, dim: int = 16, epoch: int = 25, lr: float = 0.5,
          word_ngrams: int = 2, bucket: int = 60_000, min_count: int = 2, quantize: bool = False,
          cutoff: int = 100_000, balance: bool = False, threads: int = 1, seed: int = 0,
          description: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a model, calibrate its threshold, write ``output`` (+ sidecar JSON); return the sidecar."""

    rows = read_labelled(train_file)
    if valid_file:
        valid = read_labelled(valid_file)
    else:
        rows, valid = split_valid(rows)
    labels = sorted({l for _, l in rows})
    if len(labels) < 2:
        raise UserError(f"training data has only the label(s) {labels}; need at least two classes")
    if set(labels) & {"in", "out"} and set(labels) - {"in", "out"}:
        raise UserError("mixing binary labels (in/out) with domain labels in one training file")
    counts = Counter(l for _, l in rows)
    if balance:
        # Oversample minority classes to the majority count (deterministically) so that the prior
        # learned from the corpus mix does not swamp a small class such as finance.
        top = max(counts.values())
        by = {l: [r for r in rows if r[1] == l] for l in labels}
        rows = [r for l in labels for r in (by[l] * (top // len(by[l]) + 1))[:top]]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        tr = Path(td) / "train.txt"
        _write_fasttext(rows, features, max_chars, tr)
        from .fasttext_worker import train_in_child

        tmp = output.with_name(output.name + ".tmp")
        for attempt in range(4):
            # A child process with fresh heap pages (see fasttext_worker); a real divergence at a
            # high learning rate ("Encountered NaN") is retried with another seed and a lower rate.
            params = dict(input=str(tr), dim=dim, epoch=epoch, lr=lr, wordNgrams=word_ngrams, bucket=bucket,
                          minCount=min_count, loss="softmax", thread=threads, seed=seed, verbose=0,
                          quantize={"cutoff": cutoff} if quantize else None)
            try:
                train_in_child(params, tmp)
                break
            except RuntimeError as e:
                if "NaN" not in str(e) or attempt == 3:
                    raise
                seed += 1
                lr *= 0.7
        os.replace(tmp, output)
    side: dict[str, Any] = {
        "labels": labels, "in_labels": [l for l in labels if binary(l) == "in"], "features": features,
        "max_chars": max_chars, "threshold": 0.5,
        "params": {"dim": dim, "epoch": epoch, "lr": lr, "wordNgrams": word_ngrams, "bucket": bucket,
                   "minCount": min_count, "quantized": quantize, "cutoff": cutoff if quantize else None,
                   "balance": balance, "seed": seed},
        "train": {"file": str(train_file), "examples": dict(sorted(counts.items()))},
        "valid": {"file": str(valid_file) if valid_file else "10% hash split of the training file",
                  "examples": dict(sorted(Counter(l for _, l in valid).items()))},
        **({"data": description} if description else {}),
    }
    sidecar_path(output).write_text(json.dumps(side, ensure_ascii=False, indent=2), encoding="utf-8")
    model = DomainModel(output)
    preds = model.predict([t for t, _ in valid])
    thr, f1 = calibrate_threshold([binary(l) == "in" for _, l in valid], [p.p_in for p in preds])
    side["threshold"] = thr
    side["valid"]["binary_in_f1_at_threshold"] = f1
    model.threshold = thr
    side["valid"]["metrics"] = evaluate(model, valid)
    side["model_sha256"] = hashlib.sha256(output.read_bytes()).hexdigest()
    side["model_bytes"] = output.stat().st_size
    sidecar_path(output).write_text(json.dumps(side, ensure_ascii=False, indent=2), encoding="utf-8")
    return side
