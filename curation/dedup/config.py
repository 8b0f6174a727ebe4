"""Typed configuration of the dedup stages (the executor schema is corpora_manifests.executor's)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from corpora_manifests.executor import ExecutorConfig  # noqa: F401  (the shared schema, re-exported)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DedupConfig(_Strict):
    """Exact + MinHash near-dedup on character n-grams of the normalised text.

    Defaults follow datatrove's MinhashConfig (5-grams, 14 bands x 8 rows: the LSH S-curve crosses
    0.5 at Jaccard ~0.72) with a verification step datatrove lacks: a candidate pair joins a cluster
    only if its Jaccard is >= ``threshold`` — estimated from all 112 hashes when the estimate is
    clearly above or below, computed exactly from the stored n-gram sets otherwise.
    """

    enabled: bool = True
    ngram: int = Field(5, ge=1, le=32, description="character n-gram size")
    num_bands: int = Field(14, ge=1, le=512)
    rows_per_band: int = Field(8, ge=1, le=64)
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity that makes a near-duplicate")
    verify: Literal["exact", "estimate"] = Field(
        "exact", description="exact: candidates whose estimate is not clearly above/below the threshold get their "
                             "exact n-gram Jaccard (needs ~4 B/char of disk); estimate: the 112-hash estimate only")
    verify_threshold: float | None = Field(
        None, ge=0, le=1,
        description="verify=estimate: estimated-Jaccard cut; default threshold - 0.05 (see docs/curation_dedup.md)")
    exact_band: tuple[float, float] = Field(
        (0.15, 0.1), description="verify=exact: estimates within (threshold - a, threshold + b) are checked exactly")
    seed: int = 1
    keep: Literal["longest", "newest", "first"] = "longest"
    date_key: str = Field("date", description="metadata key read by keep=newest (ISO dates sort as strings)")
    bucket_partitions: int = Field(1, ge=1, description="hash-range partitions per band (bucket-stage memory / P)")
    bucket_window: int = Field(
        1 << 20, ge=2, description="band records a bucket task merges at once (its memory: ~40 B each); buckets stay whole")
    max_bucket_pairs: int = Field(
        64, ge=2, description="buckets up to this size verify all pairs; larger ones verify a star + chain")
    batch_chars: int = Field(4_000_000, ge=1000, description="characters per signature batch (memory vs. call overhead)")

    @property
    def num_perm(self) -> int:
        return self.num_bands * self.rows_per_band

    @property
    def effective_verify_threshold(self) -> float:
        return self.verify_threshold if self.verify_threshold is not None else max(self.threshold - 0.05, 0.0)
