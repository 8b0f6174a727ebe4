"""Exact + MinHash near-dedup on character n-grams as datatrove stages (see docs/curation_dedup.md).

Stages: ``DedupSignature`` → ``DedupBuckets`` → ``DedupCluster`` → ``DedupFilter``; compose them
with ``curation.dedup.stages.dedup_stages`` or run ``curation.dedup.pipeline.run_dedup``.
"""
from __future__ import annotations

__all__ = ["DedupBuckets", "DedupCluster", "DedupConfig", "DedupFilter", "DedupSignature", "ExecutorConfig",
           "run_dedup"]


def __getattr__(name: str):
    # lazy: importing the package must stay cheap (the CLI imports it for --help)
    if name in ("DedupConfig", "ExecutorConfig"):
        from . import config
        return getattr(config, name)
    if name == "DedupSignature":
        from .signature import DedupSignature
        return DedupSignature
    if name == "DedupBuckets":
        from .buckets import DedupBuckets
        return DedupBuckets
    if name == "DedupCluster":
        from .cluster import DedupCluster
        return DedupCluster
    if name == "DedupFilter":
        from .filter import DedupFilter
        return DedupFilter
    if name == "run_dedup":
        from .pipeline import run_dedup
        return run_dedup
    raise AttributeError(name)
