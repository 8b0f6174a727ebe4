"""Source-dataset category labels (Infinity-Instruct's ``cate_ability_en/zh``) combined with the classifier.

Rule, in this order (``domain.decided_by`` records which branch decided):

1. a sample with a category in ``keep`` is kept if the classifier's P(in) ≥ ``keep_min_score``
   (default 0: the curated label wins) — ``decided_by = category_keep``;
2. otherwise a sample with a category in ``exclude`` is dropped (reason ``category_excluded``)
   whatever the classifier says — ``decided_by = category_exclude``;
3. otherwise (no labels, or only labels in neither list) the classifier decides:
   P(in) ≥ threshold keeps — ``decided_by = classifier``.

Keep beats exclude because Infinity-Instruct gives a sample several abilities (a tax-law question
is both 法律与安全知识 and 数学能力 when it has a calculation), and the domain overlap is what matters.
Labels are compared after case-folding and stripping spaces.
"""
from __future__ import annotations

from dataclasses import dataclass


def _norm(s: str) -> str:
    return "".join(str(s).split()).casefold()


@dataclass
class CategoryDecision:
    keep: bool
    decided_by: str  # category_keep | category_exclude | classifier
    matched: str | None = None
    reason: str | None = None


class CategoryRule:
    def __init__(self, keep: list[str], exclude: list[str], keep_min_score: float = 0.0):
        self.keep = {_norm(k): k for k in keep}
        self.exclude = {_norm(k): k for k in exclude}
        self.keep_min_score = keep_min_score

    def decide(self, categories: list[str], p_in: float, classifier_in: bool) -> CategoryDecision:
        normed = [_norm(c) for c in categories]
        hit_keep = next((self.keep[c] for c in normed if c in self.keep), None)
        if hit_keep is not None:
            if p_in >= self.keep_min_score:
                return CategoryDecision(True, "category_keep", hit_keep)
            return CategoryDecision(False, "category_keep", hit_keep, "domain_category_keep_low_score")
        hit_ex = next((self.exclude[c] for c in normed if c in self.exclude), None)
        if hit_ex is not None:
            return CategoryDecision(False, "category_exclude", hit_ex, "category_excluded")
        return CategoryDecision(classifier_in, "classifier", None, None if classifier_in else "domain_out")
