"""Validation of generated Q&A: schema, non-empty, a real question, grounded answer, no duplicates.

Each check returns a reason on failure; the pipeline writes the reason to rejects. The grounding
score (share of the answer's character n-grams that occur in the source chunk) is kept in the
item's metadata as ``quality.grounding`` whatever the decision, so reviewers can sort by it.
"""
from __future__ import annotations

import re
from typing import Any

_INTERROGATIVE = re.compile(
    r"[？?]|什么|怎么|怎样|如何|哪些|哪个|哪里|哪种|为何|为什么|是否|能否|可否|有无|多少|多久|几|谁|何|吗|呢|请(?:说明|简述|列举|解释|概述|分析|阐述|回答|介绍|撰写|写|编写|起草|总结|归纳|比较|说出)"
)
_REFERS_TO_PROMPT = re.compile(r"本文|该片段|上文|以上片段|本片段|这段文字|文中")


_NON_CONTENT = re.compile(r"[\W_]+")


def _content_chars(text: str) -> str:
    # n-grams over letters, digits and CJK only: punctuation and spacing differ freely between a
    # source and a faithful answer and must not count for or against grounding.
    return _NON_CONTENT.sub("", text)


def char_ngrams(text: str, n: int) -> set[str]:
    s = _content_chars(text)
    if len(s) < n:
        return {s} if s else set()
    return {s[i:i + n] for i in range(len(s) - n + 1)}


def grounding_score(answer: str, chunk: str | set[str], n: int = 3) -> float:
    """Share of the answer's character n-grams found in the chunk (1.0 = entirely copied).

    ``chunk`` may be given as its precomputed n-gram set (several pairs come from one chunk)."""
    a = char_ngrams(answer, n)
    if not a:
        return 0.0
    c = chunk if isinstance(chunk, set) else char_ngrams(chunk, n)
    return len(a & c) / len(a)


def check_pair(pair: dict[str, Any], chunk_text: str | set[str], *, task_type: str, min_question_chars: int = 6,
               min_answer_chars: int = 4, ngram: int = 3, min_grounding: float = 0.3) -> tuple[str | None, float]:
    """Return (reason or None, grounding score)."""
    q, a = pair.get("question"), pair.get("answer")
    if not isinstance(q, str) or not isinstance(a, str):
        return "schema", 0.0
    q, a = q.strip(), a.strip()
    if not q or not a:
        return "empty", 0.0
    if len(_content_chars(q)) < min_question_chars:
        return "question_too_short", 0.0
    if len(_content_chars(a)) < min_answer_chars:
        return "answer_too_short", 0.0
    if not _INTERROGATIVE.search(q):
        return "not_a_question", 0.0
    if _REFERS_TO_PROMPT.search(q):
        return "question_refers_to_prompt", 0.0
    score = grounding_score(a, chunk_text, ngram)
    if score < min_grounding:
        return "not_grounded", score
    return None, score


class NearDuplicateIndex:
    """MinHash-LSH (rensa) over character n-grams of question + answer; first seen wins."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, ngram: int = 5, seed: int = 42):
        import rensa

        self._rensa = rensa
        self.threshold = threshold
        self.num_perm = num_perm
        self.ngram = ngram
        self.seed = seed
        bands = _bands_for(num_perm, threshold)
        self._lsh = rensa.RMinHashLSH(threshold=threshold, num_perm=num_perm, num_bands=bands)
        self._sigs: dict[int, Any] = {}
        self._ids: list[str] = []

    def _minhash(self, text: str):
        m = self._rensa.RMinHash(self.num_perm, self.seed)
        grams = sorted(char_ngrams(text, self.ngram))
        if grams:
            m.update(grams)
        return m

    def add(self, item_id: str, text: str) -> str | None:
        """Insert; return the id of an earlier near-duplicate (and do not insert) if there is one."""
        m = self._minhash(text)
        for key in self._lsh.query(m):
            if self._sigs[key].jaccard(m) >= self.threshold:
                return self._ids[key]
        key = len(self._ids)
        self._ids.append(item_id)
        self._sigs[key] = m
        self._lsh.insert(key, m)
        return None


def _bands_for(num_perm: int, threshold: float) -> int:
    # Pick the band count (a divisor of num_perm) whose S-curve midpoint (1/b)^(1/r) is closest to
    # the threshold, a little below it so that true duplicates are rarely missed.
    best, best_err = 1, 9.0
    for b in range(1, num_perm + 1):
        if num_perm % b:
            continue
        r = num_perm // b
        mid = (1 / b) ** (1 / r)
        err = abs(mid - (threshold - 0.05))
        if err < best_err:
            best, best_err = b, err
    return best
