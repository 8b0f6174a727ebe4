"""Chinese quality filter (datatrove ``BaseFilter``): scores → ``quality.*`` metadata → keep or drop with a reason.

Thresholds (``QualityThresholds``) default to values measured on ../shared/data (statutes, State
Council documents, instruction answers) and on the committed bad-text set; see docs/curation.md
("Quality thresholds") for the measurement. A threshold of ``None`` disables that check.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from curation.quality.scores import score_text


class QualityThresholds(BaseModel):
    """Defaults measured on ../shared/data (docs/curation.md): 1 of 3,475 statutes dropped (0.03 %),
    1 of 60 State Council documents, every item of tests/fixtures/curation/bad_text.jsonl."""

    model_config = ConfigDict(extra="forbid")
    min_chars: int | None = 100            # statutes: p0.5 = 297, min 53
    max_chars: int | None = 2_000_000
    min_cjk_ratio: float | None = 0.25     # statutes min 0.57; State Council min 0.28 (a table)
    max_symbol_ratio: float | None = 0.10  # statutes max 0.056
    max_digit_ratio: float | None = 0.65   # statutes max 0.27; State Council max 0.61 (a table)
    max_dup_line_frac: float | None = 0.30  # statutes max 0.088; State Council max 0.157
    max_dup_para_frac: float | None = 0.30
    max_top_2gram_frac: float | None = 0.20  # statutes max 0.128
    max_top_3gram_frac: float | None = 0.18  # statutes max 0.159
    max_top_4gram_frac: float | None = 0.22  # statutes max 0.211
    min_mean_line_len: float | None = 8.0    # statutes min 20.6; nav-only pages 6-9
    min_punct_end_frac: float | None = 0.08  # nav/link pages 0.0; State Council min 0.092
    max_garbled: float | None = 0.05         # statutes max 0.0023; mojibake 0.4-1.0


# check order = reason precedence: the first failing check names the drop
_CHECKS: list[tuple[str, str, str]] = [
    ("chars", "min_chars", "too_short"),
    ("chars", "max_chars", "too_long"),
    ("garbled", "max_garbled", "garbled_text"),
    ("cjk_ratio", "min_cjk_ratio", "low_cjk_ratio"),
    ("symbol_ratio", "max_symbol_ratio", "high_symbol_ratio"),
    ("digit_ratio", "max_digit_ratio", "high_digit_ratio"),
    ("dup_line_frac", "max_dup_line_frac", "duplicate_lines"),
    ("dup_para_frac", "max_dup_para_frac", "duplicate_paragraphs"),
    ("top_2gram_frac", "max_top_2gram_frac", "repeated_2gram"),
    ("top_3gram_frac", "max_top_3gram_frac", "repeated_3gram"),
    ("top_4gram_frac", "max_top_4gram_frac", "repeated_4gram"),
    ("mean_line_len", "min_mean_line_len", "short_lines"),
    ("punct_end_frac", "min_punct_end_frac", "few_punctuated_lines"),
]


def check_scores(scores: dict[str, float], t: QualityThresholds) -> str | None:
    """The drop reason for these scores, or None to keep."""
    for key, limit_name, reason in _CHECKS:
        limit = getattr(t, limit_name)
        if limit is None or key not in scores:
            continue
        v = scores[key]
        if (limit_name.startswith("min") and v < limit) or (limit_name.startswith("max") and v > limit):
            return reason
    return None


class ZhQualityFilter(BaseFilter):
    """Character-based Chinese quality filter. Scores go to ``metadata["quality.<name>"]``."""

    name = "🀄 zh quality"

    def __init__(self, thresholds: QualityThresholds | dict | None = None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.thresholds = QualityThresholds.model_validate(thresholds or {})

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        scores = score_text(doc.text)
        for k, v in scores.items():
            doc.metadata[f"quality.{k}"] = round(v, 4)
        reason = check_scores(scores, self.thresholds)
        return (False, reason) if reason else True
