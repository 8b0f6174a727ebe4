"""Feature text for the fastText domain classifier.

``char`` (default): the first ``max_chars`` (128) Chinese characters and Latin letters of the
text's first ``2 × max_chars`` characters (digits, punctuation and whitespace dropped: they carry
little topic and every token costs the same at prediction time), lower-cased, one token per
character; fastText's ``wordNgrams`` adds character bigrams inside the model (hashed into
``bucket``). ``featurise_lines`` does this for a whole batch with numpy (one UTF-32 encode, array
filtering), which with the model's top-2 prediction gives ≥ 50 k samples/s per core.
``char+word`` appends jieba words (precise mode, no HMM); segmentation alone is slower than the
whole character classifier (benchmarks/domain_filter.py measures it). The mode and ``max_chars``
are stored in the model's sidecar so training and prediction always agree.
"""
from __future__ import annotations

import re
from typing import Literal

FeatureMode = Literal["char", "char+word"]


# Chinese characters and Latin letters carry the topic; digits, punctuation and whitespace mostly
# do not, and each token costs the same at prediction time.
_DROP = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaffa-zA-Z]+")


def _window(text: str, max_chars: int) -> str:
    return _DROP.sub("", text[: 2 * max_chars])[:max_chars].lower()


def featurise(text: str, mode: str = "char", max_chars: int = 128) -> str:
    t = _window(text, max_chars)
    chars = " ".join(t)
    if mode == "char":
        return chars
    import jieba

    # jieba sees the same raw window, so words are not glued across dropped punctuation
    raw = text[: 2 * max_chars].replace("\n", " ")
    words = " ".join(w.lower() for w in jieba.lcut(raw, HMM=False) if len(w) > 1 and not _DROP.search(w))
    return f"{chars} {words}"


_KEEP = None


def _keep_table():
    """Boolean table over all code points: the characters ``_DROP`` keeps, plus NUL (separator)."""
    import numpy as np

    keep = np.zeros(0x110000, dtype=bool)
    for lo, hi in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x61, 0x7A), (0x41, 0x5A), (0, 0)):
        keep[lo:hi + 1] = True
    return keep


def featurise_lines(texts: list[str], max_chars: int = 128) -> list[str]:
    """``" " + featurise(t, "char", max_chars) + " \\n"`` for every text (fastText ignores the
    outer spaces), for a whole batch at once.

    The batch is joined with NUL separators and encoded once as UTF-32; the character filter is
    a numpy table lookup and the space-joining a numpy interleave, so per-sample Python work is
    two slices. Identical tokens to the per-text path (a test checks), ~5x faster.
    """
    import numpy as np

    global _KEEP
    if _KEEP is None:
        _KEEP = _keep_table()
    if not texts:
        return []
    w = 2 * max_chars
    cut = [t[:w] for t in texts]
    joined = "\x00".join(cut)
    if joined.count("\x00") != len(cut) - 1:  # a text holds NUL itself (rare): it is not a feature anyway
        joined = "\x00".join(t.replace("\x00", "") for t in cut)
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    kept = cps[_KEEP[cps]].tobytes().decode("utf-32-le")
    capped = "\x00".join([p[:max_chars] for p in kept.split("\x00")]).lower() + "\x00"
    cps = np.frombuffer(capped.encode("utf-32-le"), dtype=np.uint32)
    out = np.empty(2 * len(cps), dtype=np.uint32)
    out[0::2] = 0x20
    chars = out[1::2]
    chars[:] = cps
    chars[cps == 0] = 0x0A
    return out.tobytes().decode("utf-32-le").splitlines(keepends=True)


def featurise_many(texts: list[str], mode: str = "char", max_chars: int = 128) -> list[str]:
    if mode == "char":
        return [line.strip(" \n") for line in featurise_lines(texts, max_chars)]
    return [featurise(t, mode, max_chars) for t in texts]
