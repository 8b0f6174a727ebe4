"""Paper hyper-parameters are the defaults of the ready configs; the DeepSpeed JSON follows the run
config, and a user-supplied DeepSpeed JSON is used instead when given."""
import json
from pathlib import Path

import pytest

from corpora_manifests.errors import UserError
from training.config import load_train_config
from training.deepspeed_config import deepspeed_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_paper_hyper_parameters_are_the_config_defaults():
    cpt, _ = load_train_config(CONFIGS / "train_cpt.yaml")
    s = cpt.stages[0]
    assert (cpt.kind, cpt.seq_len, s.global_batch_size, s.learning_rate) == ("cpt", 8192, 64, 1e-5)
    assert (s.lr_scheduler, s.min_lr_rate, s.warmup, s.epochs) == ("cosine_with_min_lr", 0.1, 0.05, 1)
    assert s.global_batch_size * cpt.seq_len == 524288  # ≈ 0.5 M tokens per step
    prog, _ = load_train_config(CONFIGS / "train_sft_progressive.yaml")
    s1, s2 = prog.stages
    assert (s1.global_batch_size, s1.learning_rate, s1.lr_scheduler) == (64, 1e-6, "constant")
    assert (s2.global_batch_size, s2.learning_rate) == (8, 3.5e-6)
    assert prog.gradient_checkpointing and prog.deepspeed.zero_stage == 3
    # The ablations differ only in their stage lists.
    only2, _ = load_train_config(CONFIGS / "train_sft_ablation_stage2_only.yaml")
    joint, _ = load_train_config(CONFIGS / "train_sft_ablation_joint.yaml")
    assert [s.manifests for s in only2.stages] == [s2.manifests]
    assert joint.stages[0].manifests == s1.manifests + s2.manifests
    for name in ("train_sft_stage1.yaml", "train_sft_stage2.yaml", "demo/train_sft.yaml"):
        assert load_train_config(CONFIGS / name)[0].kind == "sft"


def test_generated_deepspeed_json_is_zero3_with_cpu_offload():
    cfg, _ = load_train_config(CONFIGS / "train_sft_progressive.yaml")
    ds = deepspeed_config(cfg, cfg.stages[0], world_size=8)
    z = ds["zero_optimization"]
    assert z["stage"] == 3 and z["offload_optimizer"]["device"] == "cpu" and z["offload_param"]["device"] == "cpu"
    assert z["stage3_gather_16bit_weights_on_model_save"]
    assert (ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (64, 1, 8)
    assert ds["optimizer"]["type"] == "AdamW" and "scheduler" not in ds
    with pytest.raises(UserError, match="not a multiple"):
        deepspeed_config(cfg, cfg.stages[1], world_size=3)  # 8 sequences over 3 processes


def test_user_deepspeed_json_replaces_the_generated_one(tmp_path):
    user = {"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto"}
    (tmp_path / "ds.json").write_text(json.dumps(user))
    cfg, _ = load_train_config(CONFIGS / "demo/train_sft.yaml", [f"deepspeed.config_file={tmp_path / 'ds.json'}"])
    assert deepspeed_config(cfg, cfg.stages[0]) == user
    cfg, _ = load_train_config(CONFIGS / "demo/train_sft.yaml", [f"deepspeed.config_file={tmp_path / 'missing.json'}"])
    with pytest.raises(UserError, match="not found"):
        deepspeed_config(cfg, cfg.stages[0])


def test_stage_overrides_and_bad_keys(tmp_path):
    cfg, _ = load_train_config(CONFIGS / "demo/train_sft.yaml", ["stages.1.learning_rate=2e-6", "seq_len=256"])
    assert cfg.stages[1].learning_rate == 2e-6 and cfg.seq_len == 256
    with pytest.raises(UserError, match="stages has no index 7"):
        load_train_config(CONFIGS / "demo/train_sft.yaml", ["stages.7.learning_rate=1"])
    with pytest.raises(UserError, match="min_lr_rate"):
        load_train_config(CONFIGS / "demo/train_sft.yaml", ["stages.1.min_lr_rate=null"])
    with pytest.raises(UserError, match="lr_typo"):
        load_train_config(CONFIGS / "demo/train_sft.yaml", ["lr_typo=1"])
