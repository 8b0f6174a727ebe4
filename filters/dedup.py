"""Near-duplicate instructions: datasketch MinHashLSH over character n-grams of the first user turn.

Instruction sets repeat the same prompt with small edits (templates, numbers, punctuation); two
samples whose first user turns have an estimated Jaccard similarity ≥ ``threshold`` over
normalised character ``ngram``-shingles are duplicates and the later one is dropped
(``dedup.duplicate_of`` names the kept one). The index lives in memory in one process; for a
cluster run it is per datatrove task unless the inputs are routed so that one task sees one
dataset, or datasketch's Redis storage is configured (see docs/filters.md).
"""
from __future__ import annotations

from .text import normalise_for_match


class InstructionDeduplicator:
    def __init__(self, threshold: float = 0.8, num_perm: int = 128, ngram: int = 5, seed: int = 1):
        from datasketch import MinHashLSH

        self.threshold = threshold
        self.num_perm = num_perm
        self.ngram = ngram
        self.seed = seed
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._exact: dict[str, str] = {}
        self._keys: set[str] = set()

    def _shingles(self, text: str) -> set[bytes]:
        t = normalise_for_match(text)
        n = self.ngram
        if len(t) <= n:
            return {t.encode("utf-8")}
        return {t[i:i + n].encode("utf-8") for i in range(len(t) - n + 1)}

    def check(self, key: str, text: str) -> str | None:
        """Register the sample; return the key of an earlier near-duplicate, or None."""
        from datasketch import MinHash

        norm = normalise_for_match(text)
        if norm in self._exact:
            return self._exact[norm]
        m = MinHash(num_perm=self.num_perm, seed=self.seed)
        m.update_batch(list(self._shingles(text)))
        hits = self.lsh.query(m)
        if hits:
            return sorted(hits)[0]
        self._exact[norm] = key
        if key not in self._keys:
            self._keys.add(key)
            self.lsh.insert(key, m)
        return None
