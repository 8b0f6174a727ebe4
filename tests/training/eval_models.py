"""Real tiny Qwen2 models saved as model directories (weights + the real Qwen2.5 tokenizer) for the
`soaes eval` tests. Nothing is mocked: every model is a `Qwen2ForCausalLM` loaded back with
`from_pretrained`, exactly as a trained stage would be."""
from __future__ import annotations

from pathlib import Path


def save_tiny(path: Path, seed: int = 0, layers: int = 2, **overrides) -> Path:
    import torch
    from transformers import Qwen2ForCausalLM

    from corpora_manifests.tokenizer import load_tokenizer
    from training.model_factory import tiny_qwen2_config

    torch.manual_seed(seed)
    # use_cache=False as a training stage saves it (config and generation config): loading must undo it
    cfg = tiny_qwen2_config(num_hidden_layers=layers, use_cache=False, **overrides)
    model = Qwen2ForCausalLM(cfg).eval()
    model.save_pretrained(path)
    load_tokenizer("qwen2.5").save_pretrained(path)
    return Path(path)


def save_noisy_copy(src: Path, path: Path, sigma: float = 0.03, seed: int = 1) -> Path:
    """A draft made from a target by adding Gaussian noise to every weight: related, so the two agree
    on part of the next tokens (the tiny Qwen2: all at sigma 0.03 on its own greedy text, none at 0.05)."""
    import torch
    from transformers import AutoModelForCausalLM

    from corpora_manifests.tokenizer import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(src, local_files_only=True)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * sigma)
    model.save_pretrained(path)
    load_tokenizer("qwen2.5").save_pretrained(path)
    return Path(path)


def save_forced_answer(path: Path, letter: str) -> Path:
    """A tiny Qwen2 whose next token is always ``letter`` (or " letter"), whatever the context.

    The residual stream is made the token embedding alone (attention and MLP outputs zeroed), every
    embedding gets a large constant in one dimension, and the untied LM head reads only that
    dimension, for the two tokens of the letter: after the final RMSNorm that dimension is positive,
    so those two logits are positive and every other logit is exactly 0.
    """
    import torch
    from transformers import Qwen2ForCausalLM

    from corpora_manifests.tokenizer import load_tokenizer
    from training.model_factory import tiny_qwen2_config

    tok = load_tokenizer("qwen2.5")
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(tiny_qwen2_config(tie_word_embeddings=False, use_cache=True)).eval()
    dim = 0
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight[:, dim] = 10.0
        model.lm_head.weight.zero_()
        for text in (letter, " " + letter):
            (tid,) = tok.encode(text, add_special_tokens=False)
            model.lm_head.weight[tid, dim] = 5.0
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return Path(path)
