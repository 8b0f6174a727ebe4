"""Text normalisation, exact hashes, character n-gram hashes and MinHash signatures.

Everything per character is vectorised: the text becomes a UTF-32 code-point array, n-gram hashes
are a multiply-add over shifted views of it (numpy), and the MinHash of a whole batch is one call
into rensa's Rust kernel over a flat hash buffer. No Python loop runs per shingle.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np

_WS = re.compile(r"\s+")
# Odd 64-bit multipliers (splitmix/wyhash constants): the n-gram hash is sum(c_k * K_k) mod 2^64,
# followed by one xor-shift-multiply so that nearby code points spread over all 64 bits.
_K = np.array(
    [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93, 0xA0761D6478BD642F,
     0xE7037ED1A0B428DB, 0x8EBC6AF09C88C6E3, 0x589965CC75374CC3, 0x1D8E4E27C47D124F, 0xC2B2AE3D27D4EB4F,
     0x165667B19E3779F9, 0x27D4EB2F165667C5, 0x85EBCA77C2B2AE63, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53,
     0x9FB21C651E98DF25],
    dtype=np.uint64,
)
EMPTY_ROW = np.uint32(0xFFFFFFFF)


def normalise(text: str) -> str:
    """Text for the exact hash: NFKC (full-width → half-width, compatibility forms), case-folded,
    all whitespace removed.

    Whitespace carries no meaning in Chinese text and differs between extractors (PDF line breaks,
    HTML indentation), so two copies of one law that differ only in layout hash the same.
    """
    return _WS.sub("", unicodedata.normalize("NFKC", text).casefold())


def normalise_pair(text: str) -> tuple[str, str]:
    """(exact-hash text, n-gram text). The n-gram text keeps one space per whitespace run: removing
    it entirely makes n-grams span article and line boundaries and moved the character-5-gram
    Jaccard of real law versions by up to 0.16 (benchmarks/dedup.py ground truth is on the text as
    written); collapsing runs keeps structure and still ignores indentation and line-break style."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _WS.sub("", folded), _WS.sub(" ", folded).strip()


def exact_hash(normalised: str) -> int:
    import xxhash

    return xxhash.xxh3_64_intdigest(normalised.encode("utf-8"))


def ngram_hashes(normalised: str, n: int) -> np.ndarray:
    """uint64 hash of every character n-gram (overlapping), in text order; empty if len < n."""
    cps = np.frombuffer(normalised.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    length = len(cps) - n + 1
    if length <= 0:
        return np.empty(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = cps[0:length] * _K[0 % len(_K)]
        for k in range(1, n):
            h += cps[k:k + length] * _K[k % len(_K)] ^ np.uint64(k)
        h ^= h >> np.uint64(31)
        h *= _K[1]
        h ^= h >> np.uint64(29)
    return h


def signatures(hash_arrays: list[np.ndarray], num_perm: int, seed: int) -> np.ndarray:
    """MinHash signatures (rows, num_perm) uint32 of each n-gram set; empty sets give all-ones rows."""
    import rensa

    out = np.full((len(hash_arrays), num_perm), EMPTY_ROW, dtype=np.uint32)
    nonempty = [i for i, h in enumerate(hash_arrays) if len(h)]
    if not nonempty:
        return out
    lengths = np.fromiter((len(hash_arrays[i]) for i in nonempty), dtype=np.uint64, count=len(nonempty))
    offsets = np.zeros(len(nonempty) + 1, dtype=np.uint64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate([hash_arrays[i] for i in nonempty])
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, num_perm, seed)
    out[nonempty] = np.asarray(matrix.to_rows(), dtype=np.uint32)
    return out


def band_hashes(sigs: np.ndarray, num_bands: int, rows_per_band: int) -> np.ndarray:
    """(rows, num_bands) uint64: one hash per band of ``rows_per_band`` consecutive signature values."""
    n = sigs.shape[0]
    out = np.zeros((n, num_bands), dtype=np.uint64)
    s = sigs.astype(np.uint64)
    with np.errstate(over="ignore"):
        for b in range(num_bands):
            h = np.full(n, np.uint64(b + 1) * _K[2], dtype=np.uint64)
            for r in range(rows_per_band):
                h = (h ^ s[:, b * rows_per_band + r]) * _K[(r + 3) % len(_K)]
                h ^= h >> np.uint64(32)
            out[:, b] = h
    return out
