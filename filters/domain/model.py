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
        self._mined = None

    @property
    def mined(self):
        """The mined lexicon (``mined.py``) a v4-stacked model reads, stored beside the model (sidecar
        ``stack.mined``); None for other models."""
        name = (self.info.get("stack") or {}).get("mined")
        if name and self._mined is None:
            from .mined import MinedLexicon

            self._mined = MinedLexicon.load(self.path.parent / name)
        return self._mined

    @property
    def ft(self):
        if self._ft is None:
            from ..langid import load_fasttext

            self._ft = load_fasttext(self.path)
        return self._ft

    @property
    def labels(self) -> list[str]:
        return list(self.info["labels"])

    @property
    def stack(self) -> list[float] | None:
        """Stacking weights (``stack.py``) when the sidecar has them: P(in) is then the stacked score."""
        st = self.info.get("stack")
        return st["weights"] if st else None

    def predict_arrays(self, lines: list[str], texts: list[str] | None = None):
        """(domain labels, P(in) array, is-in array) for featurised lines (each ending in a newline).

        A stacked model (sidecar ``stack``) needs the raw ``texts`` too: its P(in) combines
        fastText's with lexicon evidence from the text, and its threshold applies to that.

        fastText is asked for the top ``n_labels - 1`` labels: the negative label is either among
        them or the one left out, whose probability is 1 - the sum of the others — exact either
        way, and asking for every label costs more (pybind builds one array per sample per label).
        """
        import numpy as np

        n = len(lines)
        if n == 0:
            return [], np.zeros(0), np.zeros(0, dtype=bool)
        labels_all = self.info.get("labels", [])
        binary_model = set(labels_all) <= {"in", "out"}
        neg = "__label__out" if binary_model else "__label__other"
        k = max(1, len(labels_all) - 1)
        tops, probs = self.ft.f.multilinePredict(lines, k, 0.0, "replace")
        if all(len(p) == k for p in probs):
            P = np.concatenate(probs).astype(np.float64).reshape(n, k)
        else:  # pragma: no cover - fastText always returns k labels at threshold 0
            P = np.array([list(p) + [0.0] * (k - len(p)) for p in probs], dtype=np.float64)
            tops = [list(t) + [""] * (k - len(t)) for t in tops]
        # position of the negative label among the returned ones (k = absent)
        pos = np.fromiter((t.index(neg) if neg in t else k for t in tops), dtype=np.int64, count=n)
        absent = pos == k
        p_neg = np.where(absent, 1.0 - P.sum(axis=1), P[np.arange(n), np.minimum(pos, k - 1)])
        p_in = np.clip(1.0 - p_neg, 0.0, 1.0)
        if self.stack is not None:
            if texts is None:
                raise ValueError("a stacked domain model needs the texts: predict_arrays(lines, texts)")
            from .stack import FEATURES, apply

            p_in = apply(self.stack, p_in, texts, tuple(self.info["stack"].get("features", FEATURES)), self.mined)
        is_in = p_in >= self.threshold
        neg_name = "out" if binary_model else "other"
        if binary_model:
            dom = ["in" if i else neg_name for i in is_in.tolist()]
        else:
            # the most probable in-domain label: the top one unless the top one is the negative
            # (a two-label model, e.g. law/other, returns only its top label: the other one is the domain)
            only_in = [l for l in labels_all if l != neg_name]
            fallback = "__label__" + (only_in[0] if len(only_in) == 1 else "in")
            dom = [((t[1] if len(t) > 1 else fallback) if ps == 0 else t[0])[9:] if i else neg_name
                   for t, ps, i in zip(tops, pos.tolist(), is_in.tolist())]
        return dom, p_in, is_in

    def predict_lines(self, lines: list[str], texts: list[str] | None = None) -> list[Prediction]:
        dom, p_in, is_in = self.predict_arrays(lines, texts)
        return [Prediction(d if i else ("out" if d == "out" else "other"), float(p), bool(i), d)
                for d, p, i in zip(dom, p_in, is_in)]

    def predict_features(self, feats: list[str], texts: list[str] | None = None) -> list[Prediction]:
        return self.predict_lines([f + "\n" for f in feats], texts)

    def lines(self, texts: list[str]) -> list[str]:
        if self.features == "char":
            return featurise_lines(texts, self.max_chars)
        return [f + "\n" for f in featurise_many(texts, self.features, self.max_chars)]

    def predict(self, texts: list[str]) -> list[Prediction]:
        if self.features == "char":
            return self.predict_lines(featurise_lines(texts, self.max_chars), texts)
        return self.predict_features(featurise_many(texts, self.features, self.max_chars), texts)

    def raw_p_in(self, texts: list[str]):
        """fastText's own P(in), before stacking (what the stacking weights are fit on)."""
        saved, self.info = self.info, {k: v for k, v in self.info.items() if k != "stack"}
        try:
            return self.predict_arrays(self.lines(texts))[1]
        finally:
            self.info = saved
