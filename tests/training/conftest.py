from pathlib import Path

import pytest

TRAIN_FIX = Path(__file__).resolve().parents[1] / "fixtures" / "training"


@pytest.fixture(scope="session")
def train_fixtures() -> Path:
    return TRAIN_FIX


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny random Qwen2 (fp32) with the real Qwen2.5 vocabulary."""
    import torch

    from training.model_factory import tiny_qwen2_config

    from transformers import Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = tiny_qwen2_config(use_cache=False)
    cfg._attn_implementation = "sdpa"
    return Qwen2ForCausalLM(cfg).eval()
