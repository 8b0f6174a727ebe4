"""A `soaes curate dedup` run killed with SIGKILL part-way and started again ends with shards,
clusters and removed files byte-identical to an uninterrupted run."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures" / "dedup"


def _split_input(tmp_path: Path, parts: int = 4) -> Path:
    lines = [line for line in (FIX / "docs.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    inp = tmp_path / "in"
    inp.mkdir()
    for k in range(parts):
        (inp / f"part{k}.jsonl").write_text("\n".join(lines[k::parts]) + "\n", encoding="utf-8")
    return inp


def _config(inp: Path, out: Path) -> dict:
    return {"input": [str(inp)], "output": str(out), "shard_bytes": 20000, "report": False,
            "executor": {"tasks": 4, "workers": 1}}


def _cmd(inp: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "soaes.cli", "curate", "dedup", str(inp), "--output", str(out),
            "--tasks", "4", "--workers", "1", "--set", "shard_bytes=20000", "--set", "report=false"]


def _digests(out: Path) -> dict[str, str]:
    files = [*sorted((out / "data").glob("*.parquet")), *sorted((out / "removed").glob("*.parquet")),
             out / "clusters.parquet"]
    return {f.relative_to(out).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_sigkill_then_resume_is_byte_identical(tmp_path, qwen_tokenizer):
    from curation.dedup.pipeline import run_dedup

    inp = _split_input(tmp_path)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run_dedup(_config(inp, ref))  # uninterrupted reference, in this process

    # Kill as soon as the first filter task (which writes shards) has completed: the other three
    # filter tasks and the finalize stage still have to run.
    proc = subprocess.Popen(_cmd(inp, killed), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    marker_dir = killed / "dedup_work" / "logs" / "filter" / "completions"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if marker_dir.exists() and any(marker_dir.iterdir()):
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "manifest.json").exists()
    done = sorted(p.name for p in marker_dir.iterdir())
    assert 1 <= len(done) < 4, done

    run_dedup(_config(inp, killed))  # started again (same config as the killed command line)
    ref_d, killed_d = _digests(ref), _digests(killed)
    assert len([k for k in ref_d if k.startswith("data/")]) >= 4
    assert killed_d == ref_d
    m_ref = json.loads((ref / "manifest.json").read_text())
    m_killed = json.loads((killed / "manifest.json").read_text())
    assert m_killed["shards"] == m_ref["shards"] and sum(s["tokens"] for s in m_ref["shards"]) > 0
    assert m_killed["stats"]["dedup"] == m_ref["stats"]["dedup"]
