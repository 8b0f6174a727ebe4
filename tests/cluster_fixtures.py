"""Real clusters for the executor tests, started and stopped by session fixtures.

- ``slurm_cluster``: a single-node Slurm cluster (Debian's slurm-wlm + munge, see
  scripts/system_deps.sh): munged, slurmctld and slurmd with a slurm.conf written for this machine's
  cores and memory into a temporary directory (``SLURM_CONF`` points every client and job at it;
  non-default ports so a system cluster is left alone). Needs root; skips saying why otherwise.
- ``ray_cluster``: a Ray head and one worker started as separate processes (``ray start --head``,
  ``ray start --address``), one CPU each, small object stores; ``ray stop`` at the end.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _munge_ok() -> bool:
    try:
        enc = _run("munge", "-n", timeout=10)
        return enc.returncode == 0 and _run("unmunge", input=enc.stdout, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _ensure_munge() -> None:
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(os.urandom(1024))
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
    if not _munge_ok():
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        _run("runuser", "-u", "munge", "--", "munged", "--force")
        for _ in range(50):
            if _munge_ok():
                return
            time.sleep(0.1)
        raise RuntimeError("munged did not start")


def _node_line() -> str:
    out = _run("slurmd", "-C").stdout.splitlines()[0]  # NodeName=vm CPUs=2 ... RealMemory=24105
    fields = dict(f.split("=", 1) for f in out.split())
    mem = int(int(fields.get("RealMemory", "4096")) * 0.8)
    return f"NodeName={fields['NodeName']} CPUs={fields['CPUs']} RealMemory={mem} State=UNKNOWN"


SLURM_CONF = """\
ClusterName=soaes-test
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0,sched_interval=1
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=2
InactiveLimit=0
{node}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def start_slurm(root: Path) -> dict:
    _ensure_munge()
    for d in ("state", "spool"):
        (root / d).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, root=root, ctld_port=_free_port(), d_port=_free_port(),
                                      node=_node_line()), encoding="utf-8")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    r1 = _run("slurmctld", "-f", str(conf), env=env)
    r2 = _run("slurmd", "-f", str(conf), env=env)
    if r1.returncode or r2.returncode:
        raise RuntimeError(f"slurm daemons failed: {r1.stderr} {r2.stderr}")
    deadline = time.time() + 60
    while time.time() < deadline:
        st = _run("sinfo", "-h", "-o", "%T", env=env).stdout.strip()
        if st == "idle":
            return env
        time.sleep(0.5)
    log = (root / "slurmctld.log").read_text(errors="replace")[-2000:] if (root / "slurmctld.log").exists() else ""
    raise RuntimeError(f"slurm node not idle after 60 s (sinfo: {st!r}); slurmctld.log: {log}")


def stop_slurm(root: Path) -> None:
    for name in ("slurmd", "slurmctld"):
        pidfile = root / f"{name}.pid"
        if not pidfile.exists():
            continue
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """SLURM_CONF of a running single-node cluster (set in os.environ for the session)."""
    if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
        pytest.skip("Slurm test: slurm-wlm not installed (scripts/system_deps.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("Slurm test: starting slurmctld/slurmd/munged needs root")
    # a short path: slurm truncates long socket/spool paths
    root = Path(tmp_path_factory.mktemp("slurm"))
    old = os.environ.get("SLURM_CONF")
    try:
        env = start_slurm(root)
    except Exception:
        stop_slurm(root)
        raise
    os.environ["SLURM_CONF"] = env["SLURM_CONF"]
    try:
        yield env["SLURM_CONF"]
    finally:
        _run("scancel", "--user=root", env=env)
        stop_slurm(root)
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old


def wait_for(path: Path, timeout: float, what: str, poll=None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            return
        if poll is not None:
            poll()
        time.sleep(0.5)
    raise AssertionError(f"{what}: {path} not written within {timeout:.0f} s")


def _ray_processes(marks: list[str]) -> list:
    """Processes of OUR Ray cluster: command lines naming its temp dir or GCS port, and their children
    (never other Ray instances on this shared machine, so no `ray stop`)."""
    import psutil

    found = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if any(m in cmd for m in marks):
            found[p.pid] = p
            try:
                for c in p.children(recursive=True):
                    found[c.pid] = c
            except psutil.Error:
                pass
    found.pop(os.getpid(), None)
    return list(found.values())


def stop_ray(marks: list[str]) -> None:
    import psutil

    procs = _ray_processes(marks)
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


def _refresh_ray_auth() -> None:
    """Ray caches its auth mode and token per process when first used; make it re-read the environment."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):
        pass


@pytest.fixture(scope="session")
def ray_cluster():
    """Address of a Ray cluster: a head and a worker started as separate processes."""
    import tempfile

    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip(f"Ray test: no 'ray' command next to {sys.executable}")
    tmp = Path(tempfile.mkdtemp(prefix="soaesray", dir="/tmp"))  # short: unix socket paths are limited
    port = _free_port()
    import secrets

    # token auth with a token of our own (Ray >= 2.5x enables token auth when ~/.ray/auth_token exists,
    # which a local ray.init elsewhere on this machine may have created)
    token = tmp / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "RAY_USAGE_STATS_ENABLED": "0", **auth}
    env.pop("RAY_ADDRESS", None)
    saved = {k: os.environ.get(k) for k in auth}
    small = ["--num-cpus=1", "--num-gpus=0", "--object-store-memory=80000000", "--disable-usage-stats",
             f"--temp-dir={tmp}"]
    marks = [str(tmp), f"127.0.0.1:{port}"]
    address = f"127.0.0.1:{port}"
    try:
        head = _run(str(ray_bin), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                    "--include-dashboard=false", *small, env=env, timeout=180)
        if head.returncode:
            pytest.fail(f"ray start --head failed: {head.stderr[-2000:]}")
        worker = _run(str(ray_bin), "start", f"--address={address}", "--node-ip-address=127.0.0.1", *small,
                      env=env, timeout=180)
        if worker.returncode:
            pytest.fail(f"ray start --address failed: {worker.stderr[-2000:]}")
        os.environ.update(auth)  # the driver (ray.init in the tests' process) authenticates the same way
        _refresh_ray_auth()
        yield address
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _refresh_ray_auth()
        stop_ray(marks)
        shutil.rmtree(tmp, ignore_errors=True)
