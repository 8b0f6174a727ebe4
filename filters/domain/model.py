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

from .features import featurise_many

IN_DOMAIN_LABELS = ("finance", "law", "business", "politics")
ALL_LABELS = (*IN_DOMAIN_LABELS, "other", "in", "out")
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "domain_zh.ftz"


def sidecar_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


@dataclass
class Prediction:
    label: str  # top label (a domain, "other", "in" or "out")
    p_in: float
    is_in: bool
    domain: str  # the most probable in-domain label if is_in, else "other" ("in"/"out" for binary models)


class DomainModel:
    def __init__(self, model_path: str | Path | None = None, threshold: float | None = None):
        self.path = Path(model_path) if model_path else SHIPPED_MODEL
        if not self.path.exists():
            raise UserError(f"domain model not found: {self.path} (train one with `soaes filters train-domain`"
                            " or use the shipped filters/models/domain_zh.ftz)")
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

    def _p_in(self, labels: list[str], probs) -> float:
        d = {l[9:]: float(p) for l, p in zip(labels, probs)}
        if "in" in d or "out" in d:
            return min(1.0, d.get("in", 0.0))
        return max(0.0, min(1.0, 1.0 - d.get("other", 0.0)))

    def predict_features(self, feats: list[str]) -> list[Prediction]:
        if not feats:
            return []
        n_labels = len(self.info.get("labels", [])) or -1
        all_labels, all_probs = self.ft.f.multilinePredict([f + "\n" for f in feats], n_labels, 0.0, "replace")
        out = []
        thr = self.threshold
        for labels, probs in zip(all_labels, all_probs):
            p_in = self._p_in(labels, probs)
            top = labels[0][9:] if labels else "other"
            is_in = p_in >= thr
            if is_in:
                # labels come sorted by probability: the first in-domain one is the most probable
                dom = next((l[9:] for l in labels if l[9:] not in ("other", "out")), "in")
            else:
                dom = "out" if "out" in self.info.get("labels", []) else "other"
            out.append(Prediction(top, p_in, is_in, dom))
        return out

    def predict(self, texts: list[str]) -> list[Prediction]:
        return self.predict_features(featurise_many(texts, self.features, self.max_chars))
