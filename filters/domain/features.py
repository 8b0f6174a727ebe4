"""Feature text for the fastText domain classifier.

``char`` (default): the first ``max_chars`` (128) characters, lower-cased, one token per character;
fastText's ``wordNgrams`` then adds character bi-/tri-grams inside the model (hashed into
``bucket``). This costs a few microseconds per sample, which is what makes ≥ 50 k samples/s per
core possible. ``char+word`` appends jieba words (precise mode, no HMM): slightly better on
some inputs, ~10× slower (benchmarks/domain_filter.py measures both). The mode and ``max_chars``
are stored with the model so training and prediction always agree.
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


def _keep_table():
    import numpy as np

    keep = np.zeros(0x10000, dtype=bool)
    for lo, hi in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x61, 0x7A), (0x41, 0x5A)):
        keep[lo:hi + 1] = True
    return keep


_KEEP = None


def featurise_lines(texts: list[str], max_chars: int = 128) -> list[str]:
    """``featurise(t, "char", max_chars) + "\\n"`` for every text, vectorised with numpy.

    The whole batch is encoded once as UTF-32; the character filter, lower-casing, the
    ``max_chars`` cap and the space-joining are array operations, and the result is split back
    into lines. Identical output to the per-text path (a test checks), ~10× faster.
    """
    import numpy as np

    global _KEEP
    if _KEEP is None:
        _KEEP = _keep_table()
    if not texts:
        return []
    w = 2 * max_chars
    cut = [t[:w] for t in texts]
    lens = np.fromiter(map(len, cut), dtype=np.int64, count=len(cut))
    cps = np.frombuffer("".join(cut).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    sample = np.repeat(np.arange(len(cut)), lens)
    keep = _KEEP[np.minimum(cps, 0xFFFF)] & (cps <= 0xFFFF)
    cps, sample = cps[keep], sample[keep]
    # rank of each kept character inside its sample: cap at max_chars
    counts = np.bincount(sample, minlength=len(cut))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(cps)) - starts[sample]
    first = rank < max_chars
    cps, sample = cps[first], sample[first]
    cps = np.where((cps >= 0x41) & (cps <= 0x5A), cps + 32, cps)
    n_tok = np.minimum(counts, max_chars)
    # layout per sample: c1 ' ' c2 ' ' … ck '\n'  (2k chars; k = 0 → just '\n')
    out_len = np.maximum(2 * n_tok, 1)
    out_start = np.concatenate(([0], np.cumsum(out_len)[:-1]))
    out = np.full(int(out_len.sum()), 0x20, dtype=np.uint32)
    tok_start = np.concatenate(([0], np.cumsum(n_tok)[:-1]))
    pos = out_start[sample] + 2 * (np.arange(len(cps)) - tok_start[sample])
    out[pos] = cps
    out[out_start + out_len - 1] = 0x0A
    return out.tobytes().decode("utf-32-le").splitlines(keepends=True)


def featurise_many(texts: list[str], mode: str = "char", max_chars: int = 128) -> list[str]:
    if mode == "char":
        return [line[:-1] for line in featurise_lines(texts, max_chars)]
    return [featurise(t, mode, max_chars) for t in texts]
