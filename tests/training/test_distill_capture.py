"""`soaes distill capture`: alignment (position j predicts token j+1), manifest contents, shards
verify, and a SIGKILLed capture restarted gives byte-identical shards."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A tiny random Qwen2 saved as a local model directory (the vocabulary padded like Qwen2.5's)."""
    from transformers import Qwen2ForCausalLM

    from training.model_factory import tiny_qwen2_config

    d = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(0)
    cfg = tiny_qwen2_config(num_hidden_layers=1, use_cache=False)
    Qwen2ForCausalLM(cfg).save_pretrained(d)
    return d


def _cfg(tmp_path, teacher_dir, train_fixtures, **kw):
    cfg = {"name": "test-capture", "output_dir": str(tmp_path / "out"), "teacher": str(teacher_dir),
           "manifests": [str(train_fixtures / "sft_stage2")], "split": "train", "seq_len": 512, "k": 16,
           "encoding": "delta_q8", "batch_tokens": 600, "shard_samples": 4, "cache_dir": str(tmp_path / "cache"),
           "attn_implementation": "sdpa", **kw}
    p = tmp_path / "capture.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_capture_aligns_position_j_with_token_j_plus_1(tmp_path, teacher_dir, train_fixtures):
    from corpora_manifests.models import load_manifest
    from corpora_manifests.shards import verify_manifest
    from corpora_manifests.tokenizer import load_tokenizer
    from transformers import AutoModelForCausalLM

    from training.distill_capture import load_capture_config, run_capture
    from training.kd_encoding import decode, decode_tail
    from training.manifest_inputs import open_manifest
    from training.token_cache import tokenize_manifest

    cfg, text = load_capture_config(_cfg(tmp_path, teacher_dir, train_fixtures, encoding="raw"))
    out = run_capture(cfg, config_text=text, progress=False)
    m = load_manifest(out)
    assert m.stage == "distill_logits" and verify_manifest(out, m) == []
    d = m.stats["distill"]
    assert d["k"] == 16 and d["encoding"] == "raw" and len(d["teacher"]["weights_sha256"]) == 64
    assert d["source_manifests"][0]["manifest_sha256"] and d["tokenizer_fingerprint"] == m.tokenizer.fingerprint
    assert json.loads((out / "compression.json").read_text())["k"] == 16
    assert d["throughput"]["tokens_per_s"] > 0

    tok = load_tokenizer("qwen2.5")
    cached = tokenize_manifest(open_manifest(train_fixtures / "sft_stage2", "sft"), tok, kind="sft", seq_len=512,
                               cache_dir=tmp_path / "cache", progress=False)
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir, attn_implementation="sdpa").eval()
    rows = pq.read_table(out / m.shards[1].path).to_pylist()
    assert len(rows) == 4 and rows[0]["doc_index"] == 4
    for row in rows[:2]:
        d_i = row["doc_index"]
        ids = np.asarray(cached.tokens[cached.offsets[d_i]:cached.offsets[d_i + 1]], dtype=np.int64)
        mask = np.asarray(cached.loss_mask[cached.offsets[d_i]:cached.offsets[d_i + 1]])
        pos = np.nonzero(mask[1:])[0]  # the logits at j predict token j+1
        assert row["n_positions"] == len(pos) == int(mask.sum()) and row["n_tokens"] == len(ids)
        with torch.no_grad():  # this sample alone, unpacked, through the model's own forward
            lp = torch.log_softmax(teacher(torch.from_numpy(ids)[None]).logits[0, :, :len(tok)].float(), -1)
        top = decode(row["ids"], row["vals"], row["aux"], 16, "raw")
        ref_lp, ref_ids = lp[torch.from_numpy(pos)].topk(16, -1)
        assert torch.equal(torch.from_numpy(top.ids), ref_ids)
        assert np.allclose(top.logp, ref_lp.numpy(), atol=2e-5)
        shifted = lp[torch.from_numpy(pos + 1)[:-1]].topk(16, -1)[0].numpy()  # off by one: must differ
        assert not np.allclose(top.logp[:-1], shifted, atol=1e-3)
        # the τ-2 tail statistics (the config's default) are the teacher's exact ones at the same positions
        tail = decode_tail(row["tail"], len(pos), 16)
        p2 = torch.softmax(lp[torch.from_numpy(pos)] / 2.0, -1)
        in_top = torch.zeros_like(p2, dtype=torch.bool).scatter_(-1, ref_ids, True)
        mass = p2.masked_fill(in_top, 0).sum(-1)
        assert np.allclose(np.exp(tail.log_mass), mass.numpy(), rtol=1e-4)
        assert not in_top.gather(-1, torch.from_numpy(tail.samples)).any()
    assert d["tail"] == {**d["tail"], "tau": 2.0, "samples": 16}


def _start(config: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "soaes.cli", "distill", "capture", str(config), "-v"], cwd=REPO,
                            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_sigkilled_capture_restarts_to_byte_identical_shards(tmp_path, teacher_dir, train_fixtures):
    (tmp_path / "ref").mkdir()
    ref_cfg = _cfg(tmp_path / "ref", teacher_dir, train_fixtures, shard_samples=2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_cfg = _cfg(run_dir, teacher_dir, train_fixtures, shard_samples=2)
    run = _start(run_cfg, tmp_path / "run.log")
    data = run_dir / "out" / "data"
    deadline = time.time() + 120
    while len(list(data.glob("*.parquet"))) < 2:
        assert run.poll() is None, (tmp_path / "run.log").read_text()[-2000:]
        assert time.time() < deadline, "no shard written in time"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    done_before = sorted(p.name for p in data.glob("*.parquet"))
    assert not (run_dir / "out" / "manifest.json").exists(), "the capture finished before it was killed"
    mtimes = {p.name: p.stat().st_mtime_ns for p in data.glob("*.parquet")}

    resumed = _start(run_cfg, tmp_path / "run.log")
    from training.distill_capture import load_capture_config, run_capture

    cfg, text = load_capture_config(ref_cfg)  # the uninterrupted reference, in this process meanwhile
    run_capture(cfg, config_text=text, progress=False)
    assert resumed.wait(timeout=180) == 0, (tmp_path / "run.log").read_text()[-2000:]
    a = json.loads((tmp_path / "ref" / "out" / "manifest.json").read_text())
    b = json.loads((run_dir / "out" / "manifest.json").read_text())
    assert [(s["path"], s["sha256"]) for s in a["shards"]] == [(s["path"], s["sha256"]) for s in b["shards"]]
    assert len(b["shards"]) == 13  # 25 train samples, 2 per shard
    for p in (tmp_path / "ref" / "out" / "data").glob("*.parquet"):
        assert p.read_bytes() == (data / p.name).read_bytes()
    # finished shards were kept, not recomputed
    assert b["stats"]["distill"]["throughput"]["kept_shards"] >= len(done_before)
    assert all((data / n).stat().st_mtime_ns == mtimes[n] for n in done_before)
    assert not list(data.glob("*.tmp"))
