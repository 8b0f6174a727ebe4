"""Fast, exact Qwen2.5 token ids: tiktoken on the shipped ``qwen.tiktoken`` ranks.

The transformers tokenizer built by ``tokenizer.load_tokenizer("qwen2.5")`` and tiktoken on the same
ranks with the Qwen2 pre-tokenisation regex give the same ids (tests check it id-for-id on every
fixture document; ``benchmarks/tokens.py`` on the law corpus), but tiktoken is ~5x faster per
CPU-second. Counting is the slowest step of curation at 25 B characters, so every count and the CPT
token cache go through here.

Exactness, not speed, decides the path of a text. The HF tokenizer does two things tiktoken's
``encode_ordinary`` does not: NFC normalisation (done here first, and only when the text is not
already NFC — the check is cheap) and matching Qwen2.5's 22 added tokens anywhere in the text. A text
containing an added token's spelling goes to the HF tokenizer, so its ids are the HF ids by
construction. Any tokenizer other than the built Qwen2.5 one (a model directory) uses HF throughout.
"""
from __future__ import annotations

import base64
import os
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Sequence

from .tokenizer import QWEN2_PAT, QWEN25_SPECIAL_TOKENS, _ranks_path

# Spellings the HF tokenizer turns into one added-token id wherever they occur in a text.
_ADDED = re.compile("|".join(re.escape(t) for t in QWEN25_SPECIAL_TOKENS))


@lru_cache(maxsize=1)
def qwen25_tiktoken():
    """The tiktoken ``Encoding`` of Qwen2.5 (ranks + regex + its 22 added tokens)."""
    import tiktoken

    ranks: dict[bytes, int] = {}
    with open(_ranks_path(), "rb") as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    first = len(ranks)
    return tiktoken.Encoding("qwen2.5", pat_str=QWEN2_PAT, mergeable_ranks=ranks,
                             special_tokens={t: first + i for i, t in enumerate(QWEN25_SPECIAL_TOKENS)})


def is_builtin_qwen25(tokenizer) -> bool:
    """True for the tokenizer ``load_tokenizer("qwen2.5")`` builds (whose ids tiktoken reproduces)."""
    return (getattr(tokenizer, "name_or_path", None) == "qwen2.5" and len(tokenizer) == 151665
            and getattr(tokenizer, "backend_tokenizer", None) is not None)


def _threads(threads: int | None) -> int:
    if threads is not None:
        return max(1, threads)
    return max(1, int(os.environ.get("SOAES_TOKENIZER_THREADS", "1")))


def encode_arrays(tokenizer, texts: Sequence[str], threads: int | None = None) -> list:
    """Ids of ``texts`` (numpy uint32 arrays) without special tokens added, exactly as ``tokenizer``
    gives them. Arrays, not lists: no Python int per token (counting is ~10 % faster).

    ``threads`` (default ``$SOAES_TOKENIZER_THREADS`` or 1): tiktoken releases the GIL, so a process
    can use more cores; pipelines already run one process per core and keep the default.
    """
    import numpy as np

    if not texts:
        return []
    if not is_builtin_qwen25(tokenizer):
        return [np.asarray(e.ids, dtype=np.uint32)
                for e in tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)]
    enc = qwen25_tiktoken()
    fast_idx: list[int] = []
    fast_texts: list[str] = []
    slow_idx: list[int] = []
    for i, t in enumerate(texts):
        if _ADDED.search(t) is not None:
            slow_idx.append(i)
            continue
        if not unicodedata.is_normalized("NFC", t):
            t = unicodedata.normalize("NFC", t)
        fast_idx.append(i)
        fast_texts.append(t)

    def one(t: str):
        # disallowed_special=(): no added token is in these texts (checked above), skip tiktoken's scan
        return enc.encode_to_numpy(t, disallowed_special=())

    out: list = [None] * len(texts)
    n = _threads(threads)
    if n == 1 or len(fast_texts) < 2:
        ids = [one(t) for t in fast_texts]
    else:
        with ThreadPoolExecutor(n) as ex:
            ids = list(ex.map(one, fast_texts))
    for i, x in zip(fast_idx, ids):
        out[i] = x
    if slow_idx:
        slow = tokenizer.backend_tokenizer.encode_batch([texts[i] for i in slow_idx], add_special_tokens=False)
        for i, e in zip(slow_idx, slow):
            out[i] = np.asarray(e.ids, dtype=np.uint32)
    return out


def encode_batch(tokenizer, texts: Sequence[str], threads: int | None = None) -> list[list[int]]:
    """As ``encode_arrays``, as lists of ints."""
    return [a.tolist() for a in encode_arrays(tokenizer, texts, threads)]


def count_batch(tokenizer, texts: Sequence[str], threads: int | None = None) -> list[int]:
    return [len(a) for a in encode_arrays(tokenizer, texts, threads)]
