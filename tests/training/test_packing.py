"""Packing: documents isolated (packed logits == unpacked logits), no CPT token dropped, SFT bins full."""
import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.packing import materialise, pack_best_fit, pack_stream
from training.stage_data import build_stage_data


def _cfg(kind, manifests, tmp_path, seq_len):
    return TrainConfig(name="t", kind=kind, output_dir=str(tmp_path / "run"), model={"tiny": {}}, seq_len=seq_len,
                       cache_dir=str(tmp_path / "cache"),
                       stages=[dict(name="s", manifests=[str(m) for m in manifests], learning_rate=1e-3, global_batch_size=1)])


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("kind", ["cpt", "sft"])
def test_packed_logits_equal_unpacked_for_every_document(kind, attn, tiny_model, qwen_tokenizer, train_fixtures, tmp_path):
    manifests = [train_fixtures / "cpt"] if kind == "cpt" else [train_fixtures / "sft_stage1", train_fixtures / "sft_stage2"]
    data = build_stage_data(_cfg(kind, manifests, tmp_path, 384), _cfg(kind, manifests, tmp_path, 384).stages[0],
                            qwen_tokenizer, progress=False)
    ds = data.dataset()
    tiny_model.config._attn_implementation = attn
    checked = 0
    multi = [i for i in range(len(ds)) if len(data.plan.segments_of(i)) >= 2][:2]
    assert multi, "fixture packing should put several documents in one sequence"
    # The two sequences go through the training collator as one micro-batch (the shorter is padded).
    batch = ds.collator([ds[i] for i in multi])
    with torch.no_grad():
        # No attention mask: isolation comes from the per-document position ids alone.
        packed = tiny_model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        for row, i in enumerate(multi):
            fill = 0
            for k in data.plan.segments_of(i):
                n = int(data.plan.end[k] - data.plan.start[k])
                ids = batch["input_ids"][row, fill:fill + n]
                alone = tiny_model(input_ids=ids[None], use_cache=False).logits[0]
                diff = (packed[row, fill:fill + n] - alone).abs().max().item()
                assert diff < 1e-5, f"sequence {i} segment {k}: max |packed - unpacked| = {diff}"
                fill += n
                checked += 1
            assert (batch["labels"][row, fill:] == -100).all()
    assert checked >= 4


def test_cpt_packing_drops_no_token_and_targets_each_once():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 700, size=200)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = rng.integers(0, 150000, size=int(offsets[-1])).astype(np.int32)
    plan = pack_stream([offsets], seq_len=256)
    assert plan.stats["tokens_lost"] == 0
    assert plan.stats["efficiency"] > 0.99
    # Rebuild every token's target count from the materialised sequences.
    targets = np.zeros(len(tokens), dtype=np.int64)
    for i in range(plan.n_sequences):
        item = materialise(plan, i, [tokens], [None])
        fill = 0
        for k in plan.segments_of(i):
            a, b = int(plan.start[k]), int(plan.end[k])
            np.testing.assert_array_equal(item["input_ids"][fill:fill + b - a], tokens[a:b])
            np.testing.assert_array_equal(item["position_ids"][fill:fill + b - a], np.arange(b - a))
            assert item["labels"][fill] == -100  # never predicted across a boundary
            targets[a + 1:b] += 1
            fill += b - a
        assert fill == len(item["input_ids"]) <= 256  # not padded: the collator pads a micro-batch
    firsts = offsets[:-1]
    expected = np.ones(len(tokens), dtype=np.int64)
    expected[firsts] = 0
    np.testing.assert_array_equal(targets, expected)  # every non-first token a target exactly once


def test_sft_best_fit_keeps_samples_whole_and_fills_bins():
    rng = np.random.default_rng(1)
    lengths = rng.integers(20, 900, size=3000)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    plan = pack_best_fit([offsets], seq_len=4096)
    seen = sorted(zip(plan.start.tolist(), plan.end.tolist()))
    assert seen == list(zip(offsets[:-1].tolist(), offsets[1:].tolist()))  # each sample once, whole
    per_bin = np.bincount(plan.seq, weights=plan.end - plan.start, minlength=plan.n_sequences)
    assert per_bin.max() <= 4096
    assert plan.stats["efficiency"] >= 0.99 and plan.stats["tokens_lost"] == 0
    with pytest.raises(ValueError):
        pack_best_fit([np.array([0, 5000])], seq_len=4096)


def test_sft_labels_are_assistant_tokens_only(qwen_tokenizer, train_fixtures, tmp_path):
    cfg = _cfg("sft", [train_fixtures / "sft_stage1"], tmp_path, 1024)
    data = build_stage_data(cfg, cfg.stages[0], qwen_tokenizer, progress=False)
    ds = data.dataset()
    total = sum(int((ds[i]["labels"] != -100).sum()) for i in range(len(ds)))
    assert total == data.summary()["target_tokens"] > 0
    item = ds[0]
    decoded = qwen_tokenizer.decode(item["labels"][item["labels"] != -100])
    assert "<|im_start|>" not in decoded and "<|im_end|>" in decoded
