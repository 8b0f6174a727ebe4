"""`soaes synth run` with the LLM generator, SIGKILLed mid-run against the local faulty server and
restarted: no finished request is sent again (counted at the server) and the result equals an
uninterrupted run's."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

from corpora_manifests.shards import iter_rows
from synthesis.pipeline import run_synthesis
from synthesis.store import ReviewStore

from .conftest import DEMO_CONFIG, REPO


def _sets(server):
    return ["generator=llm", f"llm.base_url={server.base_url}", "source.limit=6", "llm.max_concurrency=2",
            "llm.backoff_base_s=0.01", "llm.timeout_s=5", "prompts.report_fraction=0.2", "review.required=false"]


def _cmd(out, server):
    cmd = [sys.executable, "-c", "from soaes.cli import main; main()", "synth", "run", str(DEMO_CONFIG), "-o", str(out)]
    for s in _sets(server):
        cmd += ["--set", s]
    return cmd


def _rows(out):
    rows = [r for stage in ("sft_stage2", "eval") for r in iter_rows(out / stage)]
    return sorted(rows, key=lambda r: r["id"])


def _cached_keys(out):
    db = sqlite3.connect(out / "cache" / "llm_cache.sqlite")
    try:
        return {k for (k,) in db.execute("SELECT key FROM responses")}
    finally:
        db.close()


def test_sigkill_mid_run_then_restart_resends_nothing_finished(fake_server, tmp_path, in_repo, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    # faulty: some requests are rate-limited or fail once before they succeed
    s = fake_server(latency_s=0.25, retry_after_s=0.05, script={"第三条": ["429", "500"], "第五条": ["500"]})
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENAI_API_KEY="sk-test")
    proc = subprocess.Popen(_cmd(out, s), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while sum(s.answered.values()) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "sft_stage2" / "manifest.json").exists()  # killed mid-run
    finished = _cached_keys(out)
    before = dict(s.received_requests)
    assert finished and set(finished) <= set(before)

    r = subprocess.run(_cmd(out, s), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    resent = {k: n - before.get(k, 0) for k, n in s.received_requests.items() if n - before.get(k, 0)}
    assert not (set(resent) & finished)  # no finished request was paid for again
    assert len(finished) < len(s.received_requests)  # and the kill did land mid-run: some were still to do
    assert set(_cached_keys(out)) == set(s.received_requests)

    ref = tmp_path / "uninterrupted"
    run_synthesis(str(DEMO_CONFIG), [f"output_dir={ref}", *_sets(s)], progress=False)
    rows, ref_rows = _rows(out), _rows(ref)
    assert rows and rows == ref_rows
    with ReviewStore(out / "review.sqlite") as a, ReviewStore(ref / "review.sqlite") as b:
        assert [(x.item.item_id, x.status, x.final_answer) for x in a.list_items()] == \
               [(x.item.item_id, x.status, x.final_answer) for x in b.list_items()]
