"""Compose the dedup stages; ``corpora_manifests.executor.run_stages`` runs them (local, Slurm or Ray).

A run is a list of ``Stage``s, each a datatrove pipeline with its own task count, and a finalize call:

    1 signature  readers → DedupSignature                      tasks = input shards
    2 buckets    DedupBuckets                                  tasks = (bands + 1) x partitions
    3 cluster    DedupCluster                                  1 task
    4 filter     readers → DedupFilter → TokenCounter → ShardsWriter   tasks = input shards
    finalize     FinalizeCorpus: manifest.json, stats and the HTML report (on Slurm: the last job)

Each stage logs to ``<out>/dedup_work/logs/<stage>/`` where datatrove keeps its completion
markers, so a killed run resumes at the first unfinished task.
"""
from __future__ import annotations

from pathlib import Path

from corpora_manifests.executor import Stage, check_executor, run_stages  # noqa: F401  (re-exported)

from .config import DedupConfig


def dedup_stages(out: str | Path, make_readers, dedup: DedupConfig, tasks: int, tail: list,
                 tokenizer: str | None = "qwen2.5") -> list[Stage]:
    """``make_readers()`` returns fresh reader steps (stages 1 and 4 read the same input the same way);
    ``tail`` are the steps after the dedup filter (token counter, shard writer)."""
    from .buckets import DedupBuckets, bucket_tasks
    from .cluster import DedupCluster
    from .filter import DedupFilter
    from .signature import DedupSignature

    out = str(out)
    if not dedup.enabled:
        return [Stage("write", [*make_readers(), *tail], tasks)]
    return [
        Stage("signature", [*make_readers(), DedupSignature(out, dedup)], tasks),
        Stage("buckets", [DedupBuckets(out, dedup)], bucket_tasks(dedup)),
        Stage("cluster", [DedupCluster(out, dedup)], 1),
        Stage("filter", [*make_readers(), DedupFilter(out, tokenizer=tokenizer), *tail], tasks),
    ]
