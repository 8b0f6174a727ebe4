"""One curriculum stage's data: manifests → verified → tokenised (cached) → packed → a Dataset."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import StageConfig, TrainConfig
from .manifest_inputs import ManifestInput, open_manifest
from .packing import PackedCollator, PackPlan, materialise, pack_best_fit, pack_stream
from .token_cache import TokenizedManifest, tokenize_manifest


@dataclass
class StageData:
    stage: StageConfig
    inputs: list[ManifestInput]
    tokenized: list[TokenizedManifest]
    plan: PackPlan
    pad_id: int
    rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reject_counts(self) -> dict[str, int]:
        from collections import Counter

        return dict(Counter(r["reason"] for r in self.rejects))

    def summary(self) -> dict[str, Any]:
        return {
            "manifests": [i.consumed.to_dict() for i in self.inputs],
            "cache_keys": [t.key for t in self.tokenized],
            "packing": self.plan.stats,
            "target_tokens": int(sum(t.meta.get("target_tokens", t.meta["tokens"] - t.n_docs) for t in self.tokenized)),
            "split_conversations": int(sum(t.meta.get("split_conversations", 0) for t in self.tokenized)),
            "rejects": self.reject_counts,
        }

    def dataset(self):
        return PackedDataset(self)


def build_stage_data(cfg: TrainConfig, stage: StageConfig, tokenizer, progress: bool = True) -> StageData:
    if cfg.kind == "distill":
        from .distill_data import build_kd_stage_data

        return build_kd_stage_data(cfg, stage, tokenizer, progress)
    inputs = [open_manifest(m, cfg.kind, split=stage.split) for m in stage.manifests]
    tokenized = [
        tokenize_manifest(i, tokenizer, kind=cfg.kind, seq_len=cfg.seq_len, cache_dir=cfg.resolved_cache_dir(),
                          separator=cfg.cpt_separator, progress=progress)
        for i in inputs
    ]
    rejects = []
    for i, t in zip(inputs, tokenized):
        for r in t.meta.get("rejects", []):
            rejects.append({**r, "path": i.consumed.path, "stage": stage.name})
    offsets = [t.offsets for t in tokenized]
    plan = pack_stream(offsets, cfg.seq_len) if cfg.kind == "cpt" else pack_best_fit(offsets, cfg.seq_len)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return StageData(stage, inputs, tokenized, plan, int(pad_id), rejects)


class PackedDataset:
    """A map-style torch dataset of packed sequences, materialised on access from the cache."""

    def __init__(self, data: StageData):
        self.plan = data.plan
        self.tokens = [t.tokens for t in data.tokenized]
        self.masks = [t.loss_mask for t in data.tokenized]
        self.collator = PackedCollator(data.pad_id)

    def __len__(self) -> int:
        return self.plan.n_sequences

    def __getitem__(self, i: int):
        import torch

        if i < 0 or i >= len(self):
            raise IndexError(i)
        return {k: torch.from_numpy(v) for k, v in materialise(self.plan, i, self.tokens, self.masks).items()}


def steps_per_stage(n_sequences: int, stage: StageConfig, world_size: int = 1) -> int:
    """Optimizer steps the HF Trainer will run (its own formula: partial accumulations count)."""
    import math

    if stage.max_steps:
        return stage.max_steps
    ga = stage.global_batch_size // (stage.micro_batch_size * world_size)
    batches = math.ceil(n_sequences / (stage.micro_batch_size * world_size))
    per_epoch = max(batches // ga + int(batches % ga > 0), 1)
    return math.ceil(stage.epochs * per_epoch)
