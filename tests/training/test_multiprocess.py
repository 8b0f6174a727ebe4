"""The curriculum on two processes (DeepSpeed ZeRO-3 on CPU over gloo), launched as users launch it:
``torchrun --nproc_per_node 2`` and the ``deepspeed`` launcher.

- torchrun: a run killed with SIGKILL (launcher and both workers) after its first checkpoint and
  restarted ends with final weights identical, tensor for tensor, to an uninterrupted run; the
  checkpoints are ZeRO-3 shards, one per process.
- deepspeed launcher: the same config gives the same weights as torchrun (same world size, seed).
- one process with the same global batch (2 micro-batches accumulated instead of 2 processes)
  logs the same loss at every step, within 1e-4 (measured difference: < 1e-5).

All runs share one token cache and run side by side where they can, to keep the module short.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LOSS_TOL = 1e-4
RUN_TIMEOUT = 900  # seconds per launch: generous because CI machines are shared


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp: Path, fixtures: Path) -> Path:
    cfg = {
        "name": "test-two-process", "kind": "sft", "output_dir": str(tmp / "unused"),
        "model": {"tiny": {"num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64,
                           "num_attention_heads": 2, "num_key_value_heads": 1}},
        "seq_len": 384, "seed": 7, "attn_implementation": "sdpa", "gradient_checkpointing": False,
        "cache_dir": str(tmp / "cache"),
        "deepspeed": {"enabled": True, "zero_stage": 3, "offload_optimizer": "none", "offload_param": "none",
                      "optimizer": "hf"},
        "save_steps": 2, "save_total_limit": 1, "logging_steps": 1,
        # Global batch 4 = 2 processes x 1 micro-batch x 2 accumulation steps = 1 x 1 x 4. No stage
        # reaches the end of its data with a partial global batch (there the distributed sampler
        # repeats samples to fill every process, and the curves part by design).
        "stages": [
            {"name": "stage1", "manifests": [str(fixtures / "sft_stage1")], "learning_rate": 1e-3,
             "lr_scheduler": "constant", "global_batch_size": 4, "micro_batch_size": 1, "max_steps": 4},
            {"name": "stage2", "manifests": [str(fixtures / "sft_stage2")], "split": "train", "learning_rate": 5e-4,
             "lr_scheduler": "cosine_with_min_lr", "min_lr_rate": 0.1, "warmup": 0.3,
             "global_batch_size": 4, "micro_batch_size": 1, "max_steps": 1},
        ],
    }
    p = tmp / "train.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    # One math thread per process, as torchrun sets by default and the deepspeed launcher does not:
    # a different thread count changes the order of float sums (weights then differ by ~1e-8).
    env.update(SOAES_NO_PROGRESS="1", DS_ACCELERATOR="cpu", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return env


def _launch(how: str, config: Path, out: Path) -> subprocess.Popen:
    train = ["soaes.cli", "train", "sft", str(config), "--set", f"output_dir={out}"]
    port = str(_free_port())
    if how == "torchrun":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port, "-m", *train]
    elif how == "deepspeed":
        cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", "2", "--master_port", port,
               "--module", *train]
    else:
        cmd = [sys.executable, "-m", *train]
    log = open(f"{out}.log", "ab")
    # Own session: SIGKILL to the group reaches the launcher and every worker at once.
    return subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(p: subprocess.Popen, out: Path) -> None:
    try:
        rc = p.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        rc = "timeout"
    assert rc == 0, f"{out.name}: exit {rc}\n" + Path(f"{out}.log").read_text(errors="replace")[-4000:]


def _weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "final" / "model.safetensors"))


def _assert_identical(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different[:5]}"


def _losses(out: Path) -> list[tuple[str, int, float]]:
    run = json.loads((out / "run.json").read_text())
    rows = []
    for s in run["stages"]:
        stage = json.loads((Path(s["model_dir"]).parent / "stage.json").read_text())
        rows += [(s["stage"], h["step"], h["loss"]) for h in stage["log_history"] if "loss" in h]
    return rows


def _signal_tree(pid: int, sig: int) -> list:
    """Send ``sig`` to a launcher and every process under it, workers first; return them."""
    import psutil

    root = psutil.Process(pid)
    procs = root.children(recursive=True) + [root]
    for p in procs:
        try:
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    return procs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, train_fixtures):
    """Uninterrupted torchrun run (the reference) + a torchrun run killed after its first checkpoint."""
    from training.curriculum import last_complete_checkpoint

    tmp = tmp_path_factory.mktemp("two_process")
    config = _config(tmp, train_fixtures)
    ref_out, killed_out = tmp / "torchrun_ref", tmp / "torchrun_killed"
    ref = _launch("torchrun", config, ref_out)
    victim = _launch("torchrun", config, killed_out)
    ckpts = killed_out / "stages" / "01-stage1" / "checkpoints"
    deadline = time.time() + RUN_TIMEOUT
    # Poll cheaply; once rank 0 has written trainer_state.json, freeze the whole run (SIGSTOP) and
    # check the checkpoint is complete as resuming judges it (every rank's RNG file whole too), so a
    # slow or busy test process can never let the run get past its first checkpoint. torchrun starts
    # each worker in a session of its own: the launcher's children are signalled one by one.
    import psutil

    while True:
        assert victim.poll() is None, Path(f"{killed_out}.log").read_text(errors="replace")[-4000:]
        assert time.time() < deadline, "no checkpoint written in time"
        if (ckpts / "checkpoint-2" / "trainer_state.json").exists():
            procs = _signal_tree(victim.pid, signal.SIGSTOP)
            if last_complete_checkpoint(ckpts, world_size=2) is not None:
                break
            for p in procs:
                p.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    procs = _signal_tree(victim.pid, signal.SIGKILL)
    assert len(procs) >= 3  # the launcher and its two workers
    assert victim.wait() == -signal.SIGKILL
    _, alive = psutil.wait_procs(procs[:-1], timeout=60)  # the workers (reparented; not our children)
    assert not alive
    assert not (killed_out / "stages" / "01-stage1" / "stage.json").exists()
    resumed = _launch("torchrun", config, killed_out)
    _wait(resumed, killed_out)
    _wait(ref, ref_out)
    return {"config": config, "tmp": tmp, "ref": ref_out, "killed": killed_out}


@pytest.mark.slow
@pytest.mark.timeout(3 * RUN_TIMEOUT)
def test_torchrun_two_processes_killed_after_a_checkpoint_resume_to_identical_weights(runs):
    ref, killed = runs["ref"], runs["killed"]
    a, b = json.loads((ref / "run.json").read_text()), json.loads((killed / "run.json").read_text())
    assert [s["world_size"] for s in a["stages"]] == [s["world_size"] for s in b["stages"]] == [2, 2]
    assert [s["global_step"] for s in b["stages"]] == [s["global_step"] for s in a["stages"]] == [4, 1]
    assert b["stages"][0]["resumed_from"].endswith("checkpoint-2") and a["stages"][0]["resumed_from"] is None
    assert a["stages"][0]["deepspeed"]["zero_optimization"]["stage"] == 3
    assert a["stages"][0]["deepspeed"]["gradient_accumulation_steps"] == 2
    # Sharded: one ZeRO-3 model-state and optimizer shard per process in every checkpoint.
    shards = sorted(p.name for p in (ref / "stages" / "01-stage1" / "checkpoints").glob("checkpoint-4/global_step4/*.pt"))
    assert shards == [f"zero_pp_rank_{r}_mp_rank_00_{k}_states.pt" for r in (0, 1) for k in ("model", "optim")]
    _assert_identical(_weights(ref), _weights(killed))
    assert _losses(ref) == _losses(killed)


@pytest.mark.slow
@pytest.mark.timeout(2 * RUN_TIMEOUT)
def test_deepspeed_launcher_matches_torchrun_and_one_process_has_the_same_loss_curve(runs):
    tmp, config = runs["tmp"], runs["config"]
    ds_out, one_out = tmp / "deepspeed", tmp / "one_process"
    ds = _launch("deepspeed", config, ds_out)
    one = _launch("single", config, one_out)
    _wait(ds, ds_out)
    _wait(one, one_out)
    assert [s["world_size"] for s in json.loads((ds_out / "run.json").read_text())["stages"]] == [2, 2]
    _assert_identical(_weights(runs["ref"]), _weights(ds_out))

    one_run = json.loads((one_out / "run.json").read_text())
    assert [s["world_size"] for s in one_run["stages"]] == [1, 1]
    assert one_run["stages"][0]["deepspeed"]["gradient_accumulation_steps"] == 4
    two, single = _losses(runs["ref"]), _losses(one_out)
    assert [(s, n) for s, n, _ in two] == [(s, n) for s, n, _ in single] == \
        [("stage1", 1), ("stage1", 2), ("stage1", 3), ("stage1", 4), ("stage2", 1)]
    worst = max(abs(x - y) for (_, _, x), (_, _, y) in zip(two, single))
    assert worst <= LOSS_TOL, (two, single)
    # The curve is a curve: training moved the loss (the comparison is not between two constants).
    assert len({round(x, 4) for _, _, x in two}) > 2


def test_a_checkpoint_missing_a_ranks_rng_state_is_not_resumed_from(tmp_path):
    import torch

    from training.curriculum import last_complete_checkpoint

    for step in (2, 4):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "trainer_state.json").write_text("{}")
        torch.save({"cpu": torch.random.get_rng_state()}, d / "rng_state_0.pth")
    torch.save({"cpu": torch.random.get_rng_state()}, tmp_path / "checkpoint-2" / "rng_state_1.pth")
    (tmp_path / "checkpoint-4" / "rng_state_1.pth").write_bytes(b"PK\x03\x04 cut short")  # killed mid-write
    assert last_complete_checkpoint(tmp_path, world_size=2) == tmp_path / "checkpoint-2"
    assert last_complete_checkpoint(tmp_path, world_size=1) == tmp_path / "checkpoint-4"


def test_a_zero_checkpoint_of_another_world_size_is_refused_in_one_line(tmp_path):
    from corpora_manifests.errors import UserError
    from training.curriculum import check_checkpoint_world_size

    g = tmp_path / "checkpoint-2" / "global_step2"
    g.mkdir(parents=True)
    for r in (0, 1):
        (g / f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt").write_bytes(b"")
    check_checkpoint_world_size(tmp_path / "checkpoint-2", 2)
    with pytest.raises(UserError, match="written by 2 processes; resume it with 2"):
        check_checkpoint_world_size(tmp_path / "checkpoint-2", 1)


def test_deepspeed_launchers_local_rank_flag_is_dropped():
    from soaes.cli import _strip_launcher_local_rank

    assert _strip_launcher_local_rank(["--local_rank=1", "train", "sft", "c.yaml"]) == ["train", "sft", "c.yaml"]
    assert _strip_launcher_local_rank(["train", "--local_rank", "0", "sft"]) == ["train", "sft"]


def test_a_second_training_process_on_the_same_output_is_refused(tmp_path):
    from corpora_manifests.errors import UserError
    from training.curriculum import hold_output_lock

    held = hold_output_lock(tmp_path / "run")
    with pytest.raises(UserError, match="another training process is using"):
        hold_output_lock(tmp_path / "run")
    held.close()
    hold_output_lock(tmp_path / "run").close()
