"""A trained domain classifier: the fastText model plus a JSON sidecar (labels, threshold, features).

``<name>.ftz`` (or ``.bin``) holds the fastText model; ``<name>.json`` next to it holds what is
needed to use it correctly: feature mode and ``max_chars``, the label set, which labels count as
in-domain, the decision threshold on P(in) calibrated on the validation split, the training-data
description and validation metrics. ``p_in`` is P(in) for a binary model and 1 − P(other) for a
multi-class one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from corpora_manifests.errors import UserError

from .features import featurise_lines, featurise_many

IN_DOMAIN_LABELS = ("finance", "law", "business", "politics")
ALL_LABELS = (*IN_DOMAIN_LABELS, "other", "in", "out")
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "domain_zh.bin"


def sidecar_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


@dataclass
class Prediction:
    label: str  # in-domain: the domain label ("in" for binary models); else "other"/"out"
    p_in: float
    is_in: bool
    domain: str  # the most probable in-domain label if is_in, else "other" ("in"/"out" for binary models)


class DomainModel:
    def __init__(self, model_path: str | Path | None = None, threshold: float | None = None):
        self.path = Path(model_path) if model_path else SHIPPED_MODEL
        if not self.path.exists():
            raise UserError(f"domain model not found: {self.path} (train one with `soaes filters train-domain`"
                            " or use the shipped filters/models/domain_zh.bin)")
        side = sidecar_path(self.path)
        if not side.exists():
            raise UserError(f"domain model {self.path} has no sidecar {side.name} (labels, threshold, features)")
        try:
            self.info = json.loads(side.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise UserError(f"domain model sidecar {side} is not valid JSON: {e}") from None
        self.features = self.info.get("features", "char")
        self.max_chars = int(self.info.get("max_chars", 256))
        self.threshold = float(threshold if threshold is not None else self.info.get("threshold", 0.5))
        self._ft = None

    @property
    def ft(self):
        if self._ft is None:
            from ..langid import load_fasttext

            self._ft = load_fasttext(self.path)
        return self._ft

    @property
    def labels(self) -> list[str]:
        return list(self.info["labels"])

    def predict_arrays(self, lines: list[str]):
        """(domain labels, P(in) array, is-in array) for featurised lines (each ending in a newline).

        Top-2 is enough to know P(negative) exactly unless two domain labels both outrank
        "other" (then P(in) > 0.5 anyway); those few are re-asked for every label. Asking for
        every label up front costs ~2x (pybind builds one array per sample per label).
        """
        import numpy as np

        n = len(lines)
        if n == 0:
            return [], np.zeros(0), np.zeros(0, dtype=bool)
        labels_all = self.info.get("labels", [])
        binary_model = set(labels_all) <= {"in", "out"}
        neg = "__label__out" if binary_model else "__label__other"
        tops, probs = self.ft.f.multilinePredict(lines, 2, 0.0, "replace")
        P = np.stack(probs).astype(np.float64)
        first = np.fromiter((l[0] == neg for l in tops), dtype=bool, count=n)
        second = np.fromiter((l[1] == neg for l in tops), dtype=bool, count=n)
        p_in = np.where(first, 1.0 - P[:, 0], np.where(second, 1.0 - P[:, 1], np.nan))
        redo = np.flatnonzero(np.isnan(p_in))
        if len(redo):
            rl, rp = self.ft.f.multilinePredict([lines[i] for i in redo], len(labels_all), 0.0, "replace")
            for i, ls, ps in zip(redo, rl, rp):
                p_in[i] = 1.0 - (float(ps[ls.index(neg)]) if neg in ls else 0.0)
        np.clip(p_in, 0.0, 1.0, out=p_in)
        is_in = p_in >= self.threshold
        neg_name = "out" if binary_model else "other"
        # the most probable in-domain label: the top one unless the top one is the negative
        dom = [(l[1] if f else l[0])[9:] if i else neg_name for l, f, i in zip(tops, first, is_in)]
        return dom, p_in, is_in

    def predict_lines(self, lines: list[str]) -> list[Prediction]:
        dom, p_in, is_in = self.predict_arrays(lines)
        return [Prediction(d if i else ("out" if d == "out" else "other"), float(p), bool(i), d)
                for d, p, i in zip(dom, p_in, is_in)]

    def predict_features(self, feats: list[str]) -> list[Prediction]:
        return self.predict_lines([f + "\n" for f in feats])

    def lines(self, texts: list[str]) -> list[str]:
        if self.features == "char":
            return featurise_lines(texts, self.max_chars)
        return [f + "\n" for f in featurise_many(texts, self.features, self.max_chars)]

    def predict(self, texts: list[str]) -> list[Prediction]:
        if self.features == "char":
            return self.predict_lines(featurise_lines(texts, self.max_chars))
        return self.predict_features(featurise_many(texts, self.features, self.max_chars))
