"""A two-stage curriculum under DeepSpeed ZeRO-3 (gloo, one CPU process): killed with SIGKILL after
its first checkpoint, restarted, it reaches the same final step and loss as an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, fixtures: Path) -> Path:
    cfg = {
        "name": "test-curriculum", "kind": "sft", "output_dir": str(tmp_path / "unused"),
        "model": {"tiny": {"num_hidden_layers": 1}}, "seq_len": 384, "seed": 7,
        "attn_implementation": "sdpa", "gradient_checkpointing": True,
        "cache_dir": str(tmp_path / "cache"),
        "deepspeed": {"enabled": True, "zero_stage": 3, "offload_optimizer": "none", "offload_param": "none",
                      "optimizer": "hf"},
        "save_steps": 2, "save_total_limit": 1, "logging_steps": 1,
        "stages": [
            {"name": "stage1", "manifests": [str(fixtures / "sft_stage1")], "learning_rate": 1e-3,
             "lr_scheduler": "constant", "global_batch_size": 2, "micro_batch_size": 1, "max_steps": 4},
            {"name": "stage2", "manifests": [str(fixtures / "sft_stage2")], "split": "train", "learning_rate": 5e-4,
             "lr_scheduler": "cosine_with_min_lr", "min_lr_rate": 0.1, "warmup": 0.3,
             "global_batch_size": 2, "micro_batch_size": 1, "max_steps": 3},
        ],
    }
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _start(config: Path, out: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env["SOAES_NO_PROGRESS"] = "1"
    out.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / f"{out.name}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "soaes.cli", "train", "sft", str(config), "--set", f"output_dir={out}"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(p: subprocess.Popen, out: Path, timeout: float = 240) -> int:
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        raise AssertionError((out.parent / f"{out.name}.log").read_text()[-3000:])


@pytest.mark.slow
def test_killed_curriculum_resumes_to_the_same_final_step_and_loss(tmp_path, train_fixtures):
    config = _config(tmp_path, train_fixtures)
    ref_out, out = tmp_path / "reference", tmp_path / "interrupted"
    ref = _start(config, ref_out)
    run = _start(config, out)
    ckpts = out / "stages" / "01-stage1" / "checkpoints"
    deadline = time.time() + 600  # a guard against a hung run, generous for a loaded machine
    while not list(ckpts.glob("checkpoint-*/trainer_state.json")):
        assert run.poll() is None, (out.parent / "interrupted.log").read_text()[-3000:]
        assert time.time() < deadline, "no checkpoint written in time"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    assert not (out / "stages" / "01-stage1" / "stage.json").exists() and not (out / "run.json").exists()

    resumed = _start(config, out)
    assert _wait(resumed, out) == 0, (out.parent / "interrupted.log").read_text()[-3000:]
    assert _wait(ref, ref_out) == 0, (ref_out.parent / "reference.log").read_text()[-3000:]

    a = json.loads((ref_out / "run.json").read_text())
    b = json.loads((out / "run.json").read_text())
    assert [s["global_step"] for s in b["stages"]] == [s["global_step"] for s in a["stages"]] == [4, 3]
    assert b["stages"][0]["resumed_from"] and b["stages"][0]["resumed_from"].endswith("checkpoint-2")
    assert a["stages"][0]["resumed_from"] is None
    for sa, sb in zip(a["stages"], b["stages"]):
        assert abs(sa["final_loss"] - sb["final_loss"]) < 1e-4, (sa["final_loss"], sb["final_loss"])
    # Stage 2 started from stage 1's weights; the run records every manifest it read, with hashes.
    assert b["stages"][1]["init_from"] == b["stages"][0]["model_dir"]
    assert b["stages"][0]["deepspeed"]["zero_optimization"]["stage"] == 3
    used = {(m["name"], m["split"], m["manifest_sha256"][:12]) for m in b["consumed_manifests"]}
    assert {n for n, _, _ in used} == {"training-fixture-sft_stage1", "training-fixture-sft_stage2"}
    assert (out / "final" / "model.safetensors").exists()
    rejects = [json.loads(line) for line in (out / "rejects" / "stage1.jsonl").read_text().splitlines()]
    assert "no_assistant_reply" in {r["reason"] for r in rejects}

    # Re-running a finished run is a no-op.
    stamp = (out / "run.json").stat().st_mtime_ns
    again = _start(config, out)
    assert _wait(again, out, 120) == 0
    assert (out / "run.json").stat().st_mtime_ns == stamp
