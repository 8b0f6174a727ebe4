"""Feature text for the fastText domain classifier.

``char`` (default): the first ``max_chars`` characters, lower-cased, one token per character;
fastText's ``wordNgrams`` then adds character bi-/tri-grams inside the model (hashed into
``bucket``). This costs a few microseconds per sample, which is what makes ≥ 50 k samples/s per
core possible. ``char+word`` appends jieba words (precise mode, no HMM): slightly better on
some inputs, ~10× slower (benchmarks/domain_filter.py measures both). The mode and ``max_chars``
are stored with the model so training and prediction always agree.
"""
from __future__ import annotations

from typing import Literal

FeatureMode = Literal["char", "char+word"]
_WS = str.maketrans({"\n": " ", "\r": " ", "\t": " ", "\v": " ", "\f": " ", "\x00": " "})


def featurise(text: str, mode: str = "char", max_chars: int = 256) -> str:
    t = text[:max_chars].lower().translate(_WS)
    chars = " ".join(t)
    if mode == "char":
        return chars
    import jieba

    words = " ".join(w for w in jieba.lcut(t, HMM=False) if len(w) > 1 and not w.isspace())
    return f"{chars} {words}"


def featurise_many(texts: list[str], mode: str = "char", max_chars: int = 256) -> list[str]:
    if mode == "char":
        tr = _WS
        return [" ".join(t[:max_chars].lower().translate(tr)) for t in texts]
    return [featurise(t, mode, max_chars) for t in texts]
