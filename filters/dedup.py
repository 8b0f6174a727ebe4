"""Near-duplicate instructions: datasketch MinHashLSH over character n-grams of the first user turn.

Instruction sets repeat the same prompt with small edits (templates, numbers, punctuation); two
samples whose first user turns have a Jaccard similarity ≥ ``threshold`` over normalised
character ``ngram``-shingles are duplicates and the later one is dropped (``dedup.duplicate_of``
names the kept one, ``dedup.jaccard`` the similarity).

LSH only *proposes* candidates: with 128 permutations its banding also returns pairs well below
the threshold (measured: 4 % of pairs at Jaccard 0.66, 15 % at 0.74). Every candidate is therefore
verified with the **exact** Jaccard of the two shingle sets (``curation.dedup.buckets.jaccard_sorted``,
the verification the CPT near-dedup uses), kept as sorted 64-bit hashes (8 bytes a shingle). The
index lives in memory in one process; for a cluster run it is per datatrove task unless the inputs
are routed so that one task sees one dataset (see docs/filters.md).
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
        self._sets: dict[str, object] = {}  # key -> sorted uint64 shingle hashes (exact verification)
        self.last_jaccard: float | None = None
        self.rejected_candidates = 0  # LSH candidates whose exact Jaccard was below the threshold

    def _shingles(self, text: str) -> set[bytes]:
        t = normalise_for_match(text)
        n = self.ngram
        if len(t) <= n:
            return {t.encode("utf-8")}
        return {t[i:i + n].encode("utf-8") for i in range(len(t) - n + 1)}

    @staticmethod
    def _hashes(shingles: set[bytes]):
        import numpy as np
        import xxhash

        return np.unique(np.fromiter((xxhash.xxh64_intdigest(s) for s in shingles), dtype=np.uint64,
                                     count=len(shingles)))

    def check(self, key: str, text: str) -> str | None:
        """Register the sample; return the key of an earlier near-duplicate, or None."""
        from datasketch import MinHash

        from curation.dedup.buckets import jaccard_sorted

        self.last_jaccard = None
        norm = normalise_for_match(text)
        if norm in self._exact:
            self.last_jaccard = 1.0
            return self._exact[norm]
        sh = self._shingles(text)
        m = MinHash(num_perm=self.num_perm, seed=self.seed)
        m.update_batch(list(sh))
        hs = self._hashes(sh)
        best, best_j = None, -1.0
        for cand in sorted(self.lsh.query(m)):
            j = jaccard_sorted(hs, self._sets[cand])
            if j >= self.threshold and j > best_j:
                best, best_j = cand, j
        if best is not None:
            self.last_jaccard = round(best_j, 4)
            return best
        if self.lsh.query(m):
            self.rejected_candidates += 1
        self._exact[norm] = key
        if key not in self._sets:
            self._sets[key] = hs
            self.lsh.insert(key, m)
        return None
