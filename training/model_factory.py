"""The model a stage trains: stage 1 from ``model`` (local directory or a tiny config), later stages
from the previous stage's saved weights. Nothing is downloaded (``local_files_only``)."""
from __future__ import annotations

from pathlib import Path

from corpora_manifests.errors import UserError

from .config import TrainConfig
from .deepspeed_config import attn_implementation, use_bf16

# A deliberately tiny Qwen2 for tests and the demo; the vocabulary matches the real Qwen2.5 tokenizer.
TINY_QWEN2_DEFAULTS = dict(
    vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
    bos_token_id=151643, eos_token_id=151645, pad_token_id=151643,
)


def tiny_qwen2_config(**overrides):
    from transformers import Qwen2Config

    return Qwen2Config(**{**TINY_QWEN2_DEFAULTS, **overrides})


def load_model(cfg: TrainConfig, init_from: Path | None, tokenizer):
    """Build/load the causal LM. Call after TrainingArguments exist (ZeRO-3 partitions at init)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if use_bf16(cfg) else torch.float32
    attn = attn_implementation(cfg)
    if init_from is None and cfg.model.tiny is not None:
        config = tiny_qwen2_config(**cfg.model.tiny)
        config.use_cache = False
        config._attn_implementation = attn
        torch.manual_seed(cfg.model.init_seed)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn)
    else:
        path = Path(init_from or cfg.model.path)
        if not (path / "config.json").exists():
            raise UserError(f"model directory {path} has no config.json (nothing is downloaded at run time)")
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, attn_implementation=attn,
                                                     local_files_only=True)
    # Packed sequences are isolated by position-id resets only without a KV cache (see packing.py).
    model.config.use_cache = False
    if model.config.vocab_size < len(tokenizer):
        raise UserError(f"model vocabulary ({model.config.vocab_size}) is smaller than the tokenizer's ({len(tokenizer)})")
    return model
