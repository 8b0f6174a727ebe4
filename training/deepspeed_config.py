"""DeepSpeed JSON from the run config, the process environment, and the hardware switches.

The generated JSON is ZeRO-3 with optimizer and parameter offload to CPU (the paper's set-up) and
concrete batch values, so ``--dry-run`` shows exactly what DeepSpeed will be told; bucket sizes stay
"auto" for the HF Trainer to derive from the model's hidden size. ``deepspeed.config_file`` replaces
the generated JSON with the user's (its "auto" values are filled by the Trainer as usual).

Single-process runs (no ``deepspeed``/``torchrun`` launcher) get the env a launcher would set
(RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and, without CUDA, ``DS_ACCELERATOR=cpu``:
DeepSpeed then runs ZeRO on the CPU accelerator over gloo.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from corpora_manifests.errors import UserError

from .config import StageConfig, TrainConfig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_process_env() -> int:
    """Fill the launcher env for a single process when no launcher did; return the world size."""
    if "WORLD_SIZE" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    if "DS_ACCELERATOR" not in os.environ and not has_cuda():
        os.environ["DS_ACCELERATOR"] = "cpu"
    return int(os.environ["WORLD_SIZE"])


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def use_bf16(cfg: TrainConfig) -> bool:
    if cfg.precision == "fp32":
        return False
    if cfg.precision == "bf16":
        if not has_cuda():
            raise UserError("precision: bf16 needs a GPU with bf16 support; use precision: auto on CPU")
        return True
    import torch

    return has_cuda() and torch.cuda.is_bf16_supported()


def attn_implementation(cfg: TrainConfig) -> str:
    if cfg.attn_implementation != "auto":
        return cfg.attn_implementation
    import importlib.util

    if has_cuda() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def gradient_accumulation(stage: StageConfig, world_size: int) -> int:
    per_step = stage.micro_batch_size * world_size
    if stage.global_batch_size % per_step:
        raise UserError(f"stage {stage.name}: global_batch_size {stage.global_batch_size} is not a multiple of "
                        f"micro_batch_size {stage.micro_batch_size} x {world_size} processes")
    return stage.global_batch_size // per_step


def deepspeed_config(cfg: TrainConfig, stage: StageConfig, world_size: int = 1) -> dict[str, Any] | None:
    ds = cfg.deepspeed
    if not ds.enabled:
        return None
    if ds.config_file:
        p = Path(ds.config_file)
        if not p.exists():
            raise UserError(f"deepspeed.config_file not found: {p}")
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise UserError(f"deepspeed.config_file {p} is not valid JSON: {e}") from None
    cuda = has_cuda()
    zero: dict[str, Any] = {"stage": ds.zero_stage, "overlap_comm": cuda, "contiguous_gradients": True,
                            "reduce_bucket_size": "auto"}
    if ds.zero_stage == 3:
        zero.update({"stage3_prefetch_bucket_size": "auto", "stage3_param_persistence_threshold": "auto",
                     "sub_group_size": 1_000_000_000, "stage3_gather_16bit_weights_on_model_save": True})
    if ds.zero_stage >= 1 and ds.offload_optimizer == "cpu":
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": cuda}
    if ds.zero_stage == 3 and ds.offload_param == "cpu":
        zero["offload_param"] = {"device": "cpu", "pin_memory": cuda}
    out: dict[str, Any] = {
        "train_batch_size": stage.global_batch_size,
        "train_micro_batch_size_per_gpu": stage.micro_batch_size,
        "gradient_accumulation_steps": gradient_accumulation(stage, world_size),
        "gradient_clipping": stage.max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": use_bf16(cfg)},
        "zero_allow_untested_optimizer": True,
        "wall_clock_breakdown": False,
    }
    if ds.optimizer == "deepspeed":
        # DeepSpeed's AdamW becomes DeepSpeedCPUAdam under optimizer offload (JIT-built once).
        out["optimizer"] = {"type": "AdamW", "params": {"lr": stage.learning_rate, "betas": [0.9, 0.999],
                                                         "eps": 1e-8, "weight_decay": stage.weight_decay}}
    # No "scheduler" key: the HF Trainer's scheduler (cosine_with_min_lr, constant, ...) drives the
    # DeepSpeed optimizer, so schedules behave the same with and without DeepSpeed.
    return out
