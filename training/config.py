"""The training run config: one YAML file = one run = a list of curriculum stages.

A run is CPT or SFT (``kind``). Each stage names its manifests and its own optimisation
hyper-parameters; stage N starts from stage N-1's weights, stage 1 from ``model``. The paper's
ablations (stage-2 only, joint stage 1+2, progressive) differ only in their ``stages`` list, so they
are configs (``configs/train_sft_*.yaml``), not code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """Where stage 1's weights come from: a local model directory, or a model built from a config.

    ``tiny`` is a ``Qwen2Config`` keyword dict (tests and the demo): nothing is downloaded, ever.
    """

    path: str | None = Field(None, description="local model directory (e.g. Qwen2.5-7B or a CPT run's final/)")
    tiny: dict[str, Any] | None = Field(None, description="Qwen2Config kwargs to build a random model")
    init_seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> "ModelConfig":
        if (self.path is None) == (self.tiny is None):
            raise ValueError("set exactly one of model.path (a local model directory) or model.tiny (a Qwen2Config dict)")
        return self


class DeepSpeedSettings(_Strict):
    """ZeRO settings the generated DeepSpeed JSON is built from; ``config_file`` replaces it."""

    enabled: bool = True
    zero_stage: Literal[0, 1, 2, 3] = 3
    offload_optimizer: Literal["cpu", "none"] = "cpu"
    offload_param: Literal["cpu", "none"] = "cpu"
    # DeepSpeed's AdamW (DeepSpeedCPUAdam when offloading: the fast path on clusters). "hf" keeps
    # the Trainer's torch AdamW, which avoids JIT-compiling cpu_adam (tests, first CPU runs).
    optimizer: Literal["deepspeed", "hf"] = "deepspeed"
    config_file: str | None = Field(None, description="a user DeepSpeed JSON used instead of the generated one")


class DistillSettings(_Strict):
    """A distillation stage: L = alpha * tau^2 * KL(teacher^tau || student^tau) + (1 - alpha) * CE.

    Offline (default): the stage's ``manifests`` are ``distill_logits`` manifests from
    ``soaes distill capture`` (the SFT data they were captured on is found through them). Online:
    ``teacher`` names a local model directory run on every batch; ``manifests`` are SFT manifests.
    """

    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term (paper: 0.5)")
    temperature: float = Field(2.0, gt=0, description="tau (paper: 2)")
    tail: Literal["renormalize", "bucket", "sampled"] = Field(
        "bucket", description="stored top-k: keep the tail as one bucket (its exact mass when captured at this "
                              "tau), estimate the tail term from the captured draws (unbiased, noisy gradient), "
                              "or renormalise the teacher over its support")
    teacher: str | None = Field(None, description="online mode: a local teacher model directory")


class StageConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    manifests: list[str] = Field(min_length=1, description="manifest directories (or manifest.json files)")
    split: str | None = Field("train", description="shard split to use when a manifest has splits")
    learning_rate: float = Field(gt=0)
    lr_scheduler: str = "cosine"
    min_lr_rate: float | None = Field(
        None, ge=0, le=1,
        description="cosine_with_min_lr floor as a fraction of the peak (min_lr crashes under ZeRO-3)")
    warmup: float = Field(0.0, ge=0, description="< 1: a fraction of the stage's steps; >= 1: steps")
    global_batch_size: int = Field(gt=0, description="sequences per optimizer step over all processes")
    micro_batch_size: int = Field(1, gt=0, description="sequences per process per forward pass")
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    distill: DistillSettings | None = Field(None, description="kind distill only: loss weights, tail handling, teacher")

    @model_validator(mode="after")
    def _scheduler(self) -> "StageConfig":
        if self.lr_scheduler == "cosine_with_min_lr" and self.min_lr_rate is None:
            raise ValueError("lr_scheduler cosine_with_min_lr needs min_lr_rate (e.g. 0.1 for 1e-5 -> 1e-6)")
        if self.global_batch_size % self.micro_batch_size:
            raise ValueError(f"global_batch_size {self.global_batch_size} is not a multiple of "
                             f"micro_batch_size {self.micro_batch_size}")
        return self


class TrainConfig(_Strict):
    name: str = Field(min_length=1)
    kind: Literal["cpt", "sft", "distill"]
    output_dir: str
    tokenizer: str = "qwen2.5"
    model: ModelConfig
    stages: list[StageConfig] = Field(min_length=1)
    seq_len: int = Field(8192, ge=16, description="packed sequence length (paper: 8k context)")
    cpt_separator: str = Field("<|endoftext|>", description="token appended to every CPT document")
    seed: int = 42
    gradient_checkpointing: bool = True
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    deepspeed: DeepSpeedSettings = Field(default_factory=DeepSpeedSettings)
    save_steps: int = Field(500, gt=0)
    save_total_limit: int | None = Field(2, gt=0)
    logging_steps: int = Field(10, gt=0)
    dataloader_num_workers: int = Field(0, ge=0)
    cache_dir: str | None = Field(None, description="tokenized-data cache (default $SOAES_CACHE/training)")

    @model_validator(mode="after")
    def _distill_settings(self) -> "TrainConfig":
        for s in self.stages:
            if self.kind == "distill" and s.distill is None:
                s.distill = DistillSettings()
            elif self.kind != "distill" and s.distill is not None:
                raise ValueError(f"stage {s.name}: 'distill' settings need kind: distill")
        return self

    @field_validator("stages")
    @classmethod
    def _unique_names(cls, v: list[StageConfig]) -> list[StageConfig]:
        names = [s.name for s in v]
        if len(names) != len(set(names)):
            raise ValueError("stage names must be unique")
        return v

    def resolved_cache_dir(self) -> Path:
        import os

        if self.cache_dir:
            return Path(self.cache_dir)
        return Path(os.environ.get("SOAES_CACHE", Path.home() / ".cache" / "soaes")) / "training"


def load_train_config(path, overrides: list[str] | None = None) -> tuple[TrainConfig, str]:
    """``load_config`` with the shared override parser (list indices work: ``stages.1.learning_rate=2e-6``)."""
    from corpora_manifests.config import load_config

    return load_config(path, TrainConfig, overrides)


def grid_configs(cfg: TrainConfig, grid_file) -> list[TrainConfig]:
    """One config per point of an alpha/temperature grid (a YAML list of {name, alpha, temperature[, tail]}),
    each into ``output_dir/<name>``, every stage's distill settings set to the point's values. ``tail``
    per point: the 'sampled' tail needs draws captured at that point's τ."""
    import yaml
    from pydantic import ValidationError

    from corpora_manifests.config import describe_validation_error
    from corpora_manifests.errors import UserError

    try:
        points = yaml.safe_load(open(grid_file, encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"grid {grid_file}: {e}") from None
    if not isinstance(points, list) or not points:
        raise UserError(f"grid {grid_file} must be a non-empty YAML list of {{name, alpha, temperature}}")
    out = []
    for p in points:
        if not isinstance(p, dict) or not {"name", "alpha", "temperature", "tail"} >= set(p) or "name" not in p:
            raise UserError(f"grid {grid_file}: bad point {p!r} (keys: name, alpha, temperature, tail)")
        data = cfg.model_dump()
        data["output_dir"] = str(Path(cfg.output_dir) / str(p["name"]))
        for st in data["stages"]:
            st["distill"] = {**(st["distill"] or {}), **{k: v for k, v in p.items() if k != "name"}}
        try:
            out.append(TrainConfig.model_validate(data))
        except ValidationError as e:
            raise UserError(describe_validation_error(e, str(grid_file))) from None
    return out
