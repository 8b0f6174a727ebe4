"""ONE executor schema and builder for every data stage (curate extract/dedup/run, filters run, synth steps).

Config (YAML key ``executor``)::

    executor:
      kind: local            # local | slurm | ray  (datatrove's executors, never home-made ones)
      workers: 2             # tasks run at once (-1 = all)
      tasks: 16              # ranks of the per-document stages (default: workers)
      slurm: {partition: cpu, time: "24:00:00", cpus_per_task: 1, mem_per_cpu_gb: 2, ...}
      ray: {address: null, cpus_per_task: 1, mem_per_cpu_gb: 1, time: 3600, retries: 2}

A run is a list of ``Stage``s (each a datatrove pipeline with its own task count) plus a ``finalize``
callable that merges the ranks into ``manifest.json``. ``run_stages`` runs them:

- local / ray: stage after stage, blocking; a stage with an unfinished task raises; then finalize.
  On Ray a task running longer than ``ray.time`` seconds is killed, and a stage's unfinished tasks
  are run again (``ray.retries`` times) before the stage fails;
- slurm: every stage is submitted as a job array depending (``afterok``) on the previous one, and
  finalize as a last job (``python -m corpora_manifests.executor finalize PIK``) depending on the
  last stage; the call returns after submission with the job ids (``Submission``). Re-running the
  same command resubmits only unfinished tasks (datatrove's completion markers) after cancelling
  jobs left waiting on a failed dependency. ``run_status(out)`` reports progress from the markers.

Jobs run the submitting interpreter (``sys.executable``) with its PYTHONPATH, so a venv or a
checkout on a shared filesystem is what the cluster runs.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from corpora_manifests.errors import UserError

STATE_DIR = ".executor"          # <out>/.executor/: submission record, finalize pickle, finalize log
SUBMISSION_FILE = "submission.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlurmOptions(_Strict):
    partition: str | None = Field(None, description="None = the cluster's default partition")
    time: str = "24:00:00"
    cpus_per_task: int = Field(1, ge=1)
    mem_per_cpu_gb: float = Field(2, gt=0)
    qos: str | None = None
    job_name: str = Field("soaes", description="prefix; the stage name is appended")
    tasks_per_job: int = Field(1, ge=1, description="datatrove tasks per array element (fewer, longer jobs)")
    max_array_size: int = 1001
    with_srun: bool = Field(False, description="wrap each task in srun (a job step)")
    env_command: str | None = Field(None, description="shell lines run before each task (module load …)")
    sbatch_args: dict[str, Any] = Field(default_factory=dict, description="extra #SBATCH --key=value lines")


class RayOptions(_Strict):
    address: str | None = Field(None, description="ray cluster address; None = RAY_ADDRESS or a local instance")
    cpus_per_task: float = Field(1, gt=0)
    mem_per_cpu_gb: float = Field(1, gt=0)
    tasks_per_job: int = Field(1, ge=1)
    time: int | None = Field(None, gt=0, description="seconds a task may run before it is killed and resubmitted "
                             "(a stuck task otherwise holds the run forever); None = no limit")
    retries: int = Field(2, ge=0, description="times a stage is run again for the tasks that did not complete")


class ExecutorConfig(_Strict):
    """Which datatrove executor runs the stages; local by default, Slurm and Ray for clusters."""

    kind: Literal["local", "slurm", "ray"] = "local"
    workers: int = Field(1, description="tasks run at once (-1 = all)")
    tasks: int | None = Field(None, ge=1, description="ranks of the per-document stages (default: workers)")
    slurm: SlurmOptions = Field(default_factory=SlurmOptions)
    ray: RayOptions = Field(default_factory=RayOptions)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v):
        return {"kind": v} if isinstance(v, str) else v  # `executor: slurm`

    @model_validator(mode="after")
    def _workers(self) -> "ExecutorConfig":
        if self.workers == 0 or self.workers < -1:
            raise ValueError("workers must be -1 (all) or >= 1")
        return self

    @property
    def n_tasks(self) -> int:
        return self.tasks or (self.workers if self.workers > 0 else 1)


def migrate_legacy_keys(data: Any) -> Any:
    """Configs written before the shared schema had top-level ``workers``/``tasks``/``slurm``/``ray``
    and ``executor: <kind>``; fold them into ``executor`` so old YAML keeps working."""
    if not isinstance(data, dict):
        return data
    legacy = {k: data[k] for k in ("workers", "tasks", "slurm", "ray") if k in data}
    if not legacy:
        return data
    data = {k: v for k, v in data.items() if k not in legacy}
    ex = data.get("executor", {})
    ex = {"kind": ex} if isinstance(ex, str) else dict(ex or {})
    for k, v in legacy.items():
        if v is not None:
            ex.setdefault(k, v)
    data["executor"] = ex
    return data


@dataclass
class Stage:
    name: str
    pipeline: list
    tasks: int


@dataclass
class Submission:
    """What a Slurm submission queued (also ``<out>/.executor/submission.json``)."""

    out: str
    stages: list[dict[str, Any]] = field(default_factory=list)  # name, logging_dir, tasks, job_id
    finalize_job_id: str | None = None
    submitted_at: float = 0.0

    @property
    def job_ids(self) -> list[str]:
        ids = [str(s["job_id"]) for s in self.stages if s.get("job_id") not in (None, -1, "-1")]
        return ids + ([self.finalize_job_id] if self.finalize_job_id else [])


# ---- builder ------------------------------------------------------------------------------------------

def _slurm_executor_class():
    from datatrove.executor import SlurmPipelineExecutor

    class SoaesSlurmExecutor(SlurmPipelineExecutor):
        """datatrove's Slurm executor; tasks run ``sys.executable`` (the submitting venv) and the
        per-stage merge_stats job is not launched (our finalize job reads the per-task stats)."""

        def launch_merge_stats(self):
            return None

        def get_launch_file_contents(self, sbatch_args: dict, run_script: str) -> str:
            pik = self.logging_dir.resolve_paths("executor.pik")
            py = shlex.quote(sys.executable)
            run = f"{py} -m datatrove.tools.launch_pickled_pipeline {shlex.quote(pik)}"
            if self.with_srun:
                run = f"srun -l -n {self.nodes_per_task} {run}"
            return super().get_launch_file_contents(sbatch_args, run)

        def get_sbatch_args(self, max_array: int = 1) -> dict:
            args = super().get_sbatch_args(max_array)
            args["mem-per-cpu"] = f"{max(1, int(round(float(self.mem_per_cpu_gb) * 1024)))}M"
            if not self.partition:
                args.pop("partition", None)
            return args

    return SoaesSlurmExecutor


def _env_command(extra: str | None) -> str:
    """Shell lines that make a job see the submitter's code: PYTHONPATH (a checkout) and extra lines."""
    lines = []
    pp = os.environ.get("PYTHONPATH")
    if pp:
        lines.append(f"export PYTHONPATH={shlex.quote(pp)}")
    if extra:
        lines.append(extra)
    return "\n".join(lines) or "true"


def build_executor(cfg: ExecutorConfig, pipeline: list, logging_dir: str | Path, tasks: int | None = None,
                   name: str = "stage", depends=None):
    """datatrove's executor for ``cfg.kind`` running ``pipeline`` on ``tasks`` ranks (default cfg.n_tasks)."""
    tasks = tasks or cfg.n_tasks
    workers = tasks if cfg.workers == -1 else min(cfg.workers, tasks)
    logging_dir = str(logging_dir)
    if cfg.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        # forkserver, not fork: a stage run in-process before (one task, e.g. the dedup cluster stage)
        # starts polars' thread pool, and workers forked from that process hang in read_parquet.
        # One worker runs in-process anyway, so the start-up cost is paid only when running in parallel.
        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir,
                                     start_method="forkserver", depends=depends)
    if cfg.kind == "ray":
        from datatrove.executor import RayPipelineExecutor

        r = cfg.ray
        return RayPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir, depends=depends,
                                   cpus_per_task=r.cpus_per_task, mem_per_cpu_gb=r.mem_per_cpu_gb,
                                   tasks_per_job=r.tasks_per_job, time=r.time)
    s = cfg.slurm
    return _slurm_executor_class()(
        pipeline, tasks=tasks, workers=-1 if cfg.workers == -1 else workers, time=s.time, partition=s.partition,
        cpus_per_task=s.cpus_per_task, mem_per_cpu_gb=s.mem_per_cpu_gb, qos=s.qos,
        job_name=f"{s.job_name}-{name}", env_command=_env_command(s.env_command), sbatch_args=dict(s.sbatch_args),
        max_array_size=s.max_array_size, tasks_per_job=s.tasks_per_job, with_srun=s.with_srun,
        logging_dir=logging_dir, depends=depends, requeue=False, mail_type=None)


def check_executor(cfg: ExecutorConfig) -> None:
    """User errors of the executor choice, before any work."""
    import shutil

    if cfg.kind == "slurm" and shutil.which("sbatch") is None:
        raise UserError("executor.kind=slurm but 'sbatch' is not on PATH")
    if cfg.kind == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("executor.kind=ray needs the 'ray' package") from None


# ---- running ------------------------------------------------------------------------------------------

def _ensure_ray(opts: RayOptions) -> bool:
    """Connect to the configured Ray cluster (or start a local one); True if this call connected."""
    import ray

    if ray.is_initialized():
        return False
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    ray.init(address=opts.address, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": env} if env else None)
    return True


def _run_stage(st: Stage, cfg: ExecutorConfig, logdir: Path) -> None:
    """One stage to completion. On Ray, tasks left incomplete (a node lost, a task killed at
    ``ray.time``) are run again up to ``ray.retries`` times; datatrove's completion markers make a
    re-run pick only those ranks. The re-run also covers datatrove's own time-limit path, which kills
    the stuck task and then fails on its bookkeeping (KeyError on the killed task's ref)."""
    attempts = 1 + (cfg.ray.retries if cfg.kind == "ray" else 0)
    error: BaseException | None = None
    for attempt in range(attempts):
        ex = build_executor(cfg, st.pipeline, logdir, tasks=st.tasks, name=st.name)
        try:
            ex.run()
            error = None
        except Exception as e:  # noqa: BLE001 - a cluster-side failure; the markers say what is left
            if cfg.kind != "ray":
                raise
            error = e
        incomplete = ex.get_incomplete_ranks(range(st.tasks))
        if not incomplete:
            return
        if attempt + 1 < attempts:
            from loguru import logger  # datatrove's logger: lands in the run's log file

            logger.warning(f"stage {st.name!r}: tasks {incomplete[:10]} did not complete"
                           f"{f' ({type(error).__name__})' if error else ''}; running them again")
    raise RuntimeError(f"stage {st.name!r}: tasks {incomplete[:10]} did not complete after {attempts} attempt(s)"
                       f"{f' (last error: {type(error).__name__}: {error})' if error else ''}; see {logdir}/logs; "
                       "run again to resume")


def run_stages(stages: list[Stage], cfg: ExecutorConfig, out: str | Path, logs_root: str | Path,
               finalize: Callable[[], Any] | None = None) -> Submission | None:
    """Run ``stages`` then ``finalize()`` (see module doc). Returns a ``Submission`` for Slurm, else None."""
    out, logs_root = Path(out), Path(logs_root)
    if cfg.kind == "slurm":
        return _submit_slurm(stages, cfg, out, logs_root, finalize)
    connected = _ensure_ray(cfg.ray) if cfg.kind == "ray" else False
    try:
        for st in stages:
            _run_stage(st, cfg, logs_root / st.name)
    finally:
        if connected:
            import ray

            ray.shutdown()
    if finalize is not None:
        finalize()
    return None


def _squeue(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """job id (array elements folded onto the array id) -> (state, reason) for jobs still queued."""
    if not job_ids:
        return {}
    try:
        r = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ",".join(job_ids)],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states: dict[str, tuple[str, str]] = {}
    for line in r.stdout.splitlines():
        jid, state, reason = (line.split("|") + ["", ""])[:3]
        base = jid.split("_")[0]
        # keep the most telling state per array: RUNNING > PENDING
        if base not in states or state == "RUNNING":
            states[base] = (state, reason)
    return states


def load_submission(out: str | Path) -> Submission | None:
    p = Path(out) / STATE_DIR / SUBMISSION_FILE
    if not p.exists():
        return None
    return Submission(**json.loads(p.read_text(encoding="utf-8")))


def _cancel_stale(prev: Submission) -> None:
    """Before a resubmission: if a job of the previous submission waits on a failed dependency, the
    rest of its chain can never run and is cancelled; jobs running or able to run mean the run is in
    progress, and a second submission would race it."""
    queued = _squeue(prev.job_ids)
    if not queued:
        return
    doomed = any("DependencyNeverSatisfied" in reason for _, reason in queued.values())
    live = sorted(j for j, (state, reason) in queued.items()
                  if state == "RUNNING" or not reason.startswith("Dependency"))
    if live or not doomed:
        raise UserError(f"{prev.out}: jobs {', '.join(live or sorted(queued))} are still queued or running; wait, "
                        f"or scancel them before resubmitting (status: soaes curate status {prev.out})")
    subprocess.run(["scancel", *sorted(queued)], check=False)


def _submit_slurm(stages: list[Stage], cfg: ExecutorConfig, out: Path, logs_root: Path,
                  finalize: Callable[[], Any] | None) -> Submission:
    import dill

    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    prev = load_submission(out)
    if prev is not None:
        _cancel_stale(prev)
    previous = None
    executors = []
    for st in stages:
        ex = build_executor(cfg, st.pipeline, logs_root / st.name, tasks=st.tasks, name=st.name, depends=previous)
        executors.append((st, ex))
        previous = ex
    if previous is not None:
        try:
            previous.launch_job()  # launches the chain of dependencies first (datatrove's `depends`)
        except subprocess.CalledProcessError as e:  # sbatch printed why (bad partition, limits …)
            raise UserError(f"sbatch refused a job of this run (exit {e.returncode}; its message is above); "
                            "check executor.slurm (partition, time, mem_per_cpu_gb)") from None
    sub = Submission(out=str(out), submitted_at=time.time())
    last_job = None
    for st, ex in executors:
        jid = ex.job_id
        sub.stages.append({"name": st.name, "logging_dir": str(logs_root / st.name), "tasks": st.tasks,
                           "job_id": None if jid in (None, -1) else str(jid)})
        if jid not in (None, -1):
            last_job = str(jid)
    if finalize is not None:
        pik = state / "finalize.pik"
        with open(pik, "wb") as f:
            dill.dump(finalize, f)
        s = cfg.slurm
        lines = ["#!/bin/bash", f"#SBATCH --job-name={s.job_name}-finalize",
                 f"#SBATCH --output={state / 'finalize-%j.out'}", f"#SBATCH --error={state / 'finalize-%j.out'}",
                 f"#SBATCH --time={s.time}", "#SBATCH --cpus-per-task=1",
                 f"#SBATCH --mem-per-cpu={max(1, int(round(s.mem_per_cpu_gb * 1024)))}M"]
        if s.partition:
            lines.append(f"#SBATCH --partition={s.partition}")
        if s.qos:
            lines.append(f"#SBATCH --qos={s.qos}")
        lines += [_env_command(s.env_command), "set -e",
                  f"{shlex.quote(sys.executable)} -m corpora_manifests.executor finalize {shlex.quote(str(pik))}"]
        script = state / "finalize.sbatch"
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = ["sbatch", "--parsable", "--export=ALL"]
        if last_job:
            args.append(f"--dependency=afterok:{last_job}")
        r = subprocess.run([*args, str(script)], capture_output=True, text=True)
        if r.returncode != 0:
            raise UserError(f"sbatch refused the finalize job: {r.stderr.strip()}")
        sub.finalize_job_id = r.stdout.strip().split(";")[0]
    tmp = state / f".{SUBMISSION_FILE}.tmp"
    tmp.write_text(json.dumps(sub.__dict__, indent=1), encoding="utf-8")
    os.replace(tmp, state / SUBMISSION_FILE)
    return sub


# ---- status -------------------------------------------------------------------------------------------

def run_status(out: str | Path) -> dict[str, Any]:
    """Progress of a run directory from datatrove's completion markers (+ squeue for Slurm jobs).

    Returns ``{"out", "finished", "stages": [{name, tasks, completed, job_id, state}], "finalize": {...}}``;
    ``state`` is one of done, running, pending, blocked (a dependency failed), failed (not queued and
    not complete: resubmit), not_submitted.
    """
    from corpora_manifests.models import MANIFEST_FILENAME

    out = Path(out)
    sub = load_submission(out)
    finished = (out / MANIFEST_FILENAME).exists()
    if sub is None:
        return {"out": str(out), "finished": finished, "stages": [], "finalize": None}
    queued = _squeue(sub.job_ids)
    stages = []
    for s in sub.stages:
        comp = Path(s["logging_dir"]) / "completions"
        done = len(list(comp.iterdir())) if comp.exists() else 0
        jid = s.get("job_id")
        if done >= s["tasks"]:
            state = "done"
        elif jid and jid in queued:
            st, reason = queued[jid]
            state = "running" if st == "RUNNING" else ("blocked" if "DependencyNeverSatisfied" in reason else "pending")
        else:
            state = "failed" if jid else "not_submitted"
        stages.append({"name": s["name"], "tasks": s["tasks"], "completed": min(done, s["tasks"]),
                       "job_id": jid, "state": state})
    fj = sub.finalize_job_id
    if finished:
        fstate = "done"
    elif fj and fj in queued:
        st, reason = queued[fj]
        fstate = "running" if st == "RUNNING" else ("blocked" if "DependencyNeverSatisfied" in reason else "pending")
    else:
        fstate = "failed" if fj else "not_submitted"
    return {"out": str(out), "finished": finished, "stages": stages,
            "finalize": {"job_id": fj, "state": fstate, "log": str(out / STATE_DIR / f"finalize-{fj}.out")}}


def wait_for_stages(out: str | Path, poll_s: float = 2.0, timeout_s: float | None = None) -> dict[str, Any]:
    """Block until every stage of the Slurm submission in ``out`` is done (for callers that need the
    results in-process, e.g. synthesis chunking); a failed or blocked stage raises."""
    t0 = time.time()
    while True:
        st = run_status(out)
        if st["stages"] and all(s["state"] == "done" for s in st["stages"]):
            return st
        bad = [s for s in st["stages"] if s["state"] in ("failed", "blocked")]
        if bad:
            raise RuntimeError(f"Slurm stage {bad[0]['name']!r} failed (job {bad[0]['job_id']}); "
                               f"logs under {out}; run again to resubmit\n{format_status(st)}")
        if timeout_s is not None and time.time() - t0 > timeout_s:
            raise TimeoutError(f"Slurm stages in {out} not done after {timeout_s:.0f} s\n{format_status(st)}")
        time.sleep(poll_s)


def format_status(status: dict[str, Any]) -> str:
    lines = [f"{status['out']}: {'finished (manifest.json written)' if status['finished'] else 'not finished'}"]
    for s in status["stages"]:
        lines.append(f"  {s['name']:<10} {s['completed']}/{s['tasks']} tasks  {s['state']}"
                     + (f"  (job {s['job_id']})" if s["job_id"] else ""))
    f = status.get("finalize")
    if f:
        lines.append(f"  {'finalize':<10} {f['state']}" + (f"  (job {f['job_id']})" if f["job_id"] else ""))
    if any(s["state"] in ("failed", "blocked") for s in status["stages"]) or (f and f["state"] in ("failed", "blocked")):
        lines.append("  a task failed: run the same command again to resubmit the unfinished tasks")
    if not status["stages"] and not status["finished"]:
        lines.append("  no Slurm submission recorded here")
    return "\n".join(lines)


def describe_submission(out: str | Path) -> str | None:
    """The lines a command prints after a Slurm submission (None if nothing was submitted)."""
    sub = load_submission(out)
    if sub is None:
        return None
    lines = [f"submitted to Slurm; {sub.out}/manifest.json is written by the last job"]
    for s in sub.stages:
        lines.append(f"  {s['name']:<10} {s['tasks']} task(s)  " +
                     (f"job {s['job_id']}" if s.get("job_id") else "already complete, skipped"))
    if sub.finalize_job_id:
        lines.append(f"  {'finalize':<10} job {sub.finalize_job_id}")
    lines.append(f"progress: soaes curate status {sub.out}")
    return "\n".join(lines)


def _finalize_main(pik: str) -> None:
    import dill

    with open(pik, "rb") as f:
        fn = dill.load(f)
    fn()


if __name__ == "__main__":  # python -m corpora_manifests.executor finalize PIK  (the last Slurm job)
    if len(sys.argv) != 3 or sys.argv[1] != "finalize":
        sys.exit("usage: python -m corpora_manifests.executor finalize PATH/finalize.pik")
    _finalize_main(sys.argv[2])
