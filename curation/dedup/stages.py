"""Compose the dedup stages and run them on a datatrove executor (local, Slurm or Ray).

A run is a list of ``Stage``s, each a datatrove pipeline with its own task count:

    1 signature  readers → DedupSignature                      tasks = input shards
    2 buckets    DedupBuckets                                  tasks = (bands + 1) x partitions
    3 cluster    DedupCluster                                  1 task
    4 filter     readers → DedupFilter → TokenCounter → ShardsWriter   tasks = input shards
    5 finalize   a step writing manifest.json, stats and the HTML report   1 task

Each stage logs to ``<out>/dedup_work/logs/<stage>/`` where datatrove keeps its completion
markers, so a killed run resumes at the first unfinished task.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpora_manifests.errors import UserError

from .config import DedupConfig, ExecutorConfig


@dataclass
class Stage:
    name: str
    pipeline: list
    tasks: int


def dedup_stages(out: str | Path, make_readers, dedup: DedupConfig, tasks: int, tail: list,
                 finalize, tokenizer: str | None = "qwen2.5") -> list[Stage]:
    """``make_readers()`` returns fresh reader steps (stages 1 and 4 read the same input the same way);
    ``tail`` are the steps after the dedup filter (token counter, shard writer)."""
    from .buckets import DedupBuckets, bucket_tasks
    from .cluster import DedupCluster
    from .filter import DedupFilter
    from .signature import DedupSignature

    out = str(out)
    if not dedup.enabled:
        return [Stage("write", [*make_readers(), *tail], tasks), Stage("finalize", [finalize], 1)]
    return [
        Stage("signature", [*make_readers(), DedupSignature(out, dedup)], tasks),
        Stage("buckets", [DedupBuckets(out, dedup)], bucket_tasks(dedup)),
        Stage("cluster", [DedupCluster(out, dedup)], 1),
        Stage("filter", [*make_readers(), DedupFilter(out, tokenizer=tokenizer), *tail], tasks),
        Stage("finalize", [finalize], 1),
    ]


def _ensure_ray(options: dict[str, Any]) -> dict[str, Any]:
    import ray

    options = dict(options)
    address = options.pop("address", None)
    if not ray.is_initialized():
        # no address: RAY_ADDRESS if set, else a local instance started for this run
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return options


def run_stages(stages: list[Stage], executor: ExecutorConfig, logs_root: str | Path) -> None:
    """Run stages in order. Local and Ray block until each stage is complete and fail loudly if a task
    failed; Slurm submits every stage as a job depending on the previous one and returns."""
    logs_root = Path(logs_root)
    kind = executor.kind
    options = dict(executor.options)
    if kind == "ray":
        options = _ensure_ray(options)
    previous = None
    for st in stages:
        workers = st.tasks if executor.workers == -1 else min(executor.workers, st.tasks)
        logdir = str(logs_root / st.name)
        if kind == "local":
            from datatrove.executor import LocalPipelineExecutor

            ex = LocalPipelineExecutor(st.pipeline, tasks=st.tasks, workers=workers, logging_dir=logdir, **options)
        elif kind == "ray":
            from datatrove.executor import RayPipelineExecutor

            ex = RayPipelineExecutor(st.pipeline, tasks=st.tasks, workers=workers, logging_dir=logdir, **options)
        else:
            from datatrove.executor import SlurmPipelineExecutor

            slurm_opts = {"time": "24:00:00", "partition": "cpu", **options}
            ex = SlurmPipelineExecutor(st.pipeline, tasks=st.tasks, workers=workers, logging_dir=logdir,
                                       job_name=f"soaes-{st.name}", depends=previous, **slurm_opts)
            previous = ex
            continue
        ex.run()
        incomplete = ex.get_incomplete_ranks(range(st.tasks))
        if incomplete:
            raise RuntimeError(f"stage {st.name!r}: tasks {incomplete[:10]} did not complete; see {logdir}/logs")
    if kind == "slurm" and previous is not None:
        previous.run()


def check_executor(executor: ExecutorConfig) -> None:
    if executor.kind == "slurm":
        import shutil

        if shutil.which("sbatch") is None:
            raise UserError("executor.kind=slurm but 'sbatch' is not on PATH")
