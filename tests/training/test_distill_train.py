"""`soaes train distill`: a packed KD batch gives the loss of its samples run one by one (the
model called on the whole collated batch, as in training), and a distill stage runs end to end
under the curriculum runner (ZeRO-3) with its loss choice recorded."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from training.distill_trainer import kd_batch_loss


@pytest.fixture(scope="module")
def captured(tmp_path_factory, train_fixtures):
    from transformers import Qwen2ForCausalLM

    from training.distill_capture import CaptureConfig, run_capture
    from training.model_factory import tiny_qwen2_config

    root = tmp_path_factory.mktemp("kd")
    torch.manual_seed(1)
    Qwen2ForCausalLM(tiny_qwen2_config(num_hidden_layers=1, use_cache=False)).save_pretrained(root / "teacher")
    cfg = CaptureConfig(name="t", output_dir=str(root / "logits"), teacher=str(root / "teacher"),
                        manifests=[str(train_fixtures / "sft_stage2")], split="train", seq_len=512, k=16,
                        encoding="delta_q8", batch_tokens=1024, shard_samples=8, cache_dir=str(root / "cache"),
                        attn_implementation="sdpa")
    run_capture(cfg, progress=False)
    return root


def _train_cfg(root: Path, **kw):
    from training.config import TrainConfig

    return TrainConfig.model_validate({
        "name": "kd", "kind": "distill", "output_dir": str(root / "run"), "model": {"tiny": {"num_hidden_layers": 1}},
        "seq_len": 768, "cache_dir": str(root / "cache"), "attn_implementation": "sdpa",
        "deepspeed": {"enabled": True, "zero_stage": 3, "offload_optimizer": "none", "offload_param": "none",
                      "optimizer": "hf"},
        "save_steps": 2, "logging_steps": 1,
        "stages": [{"name": "kd", "manifests": [str(root / "logits")], "learning_rate": 1e-3, "lr_scheduler": "constant",
                    "global_batch_size": 2, "micro_batch_size": 2, "max_steps": 2, **kw}]})


@pytest.mark.parametrize("tail", ["renormalize", "bucket", "sampled"])
def test_packed_kd_batch_equals_its_samples_unpacked(captured, tiny_model, qwen_tokenizer, tail):
    from training.stage_data import build_stage_data

    cfg = _train_cfg(captured)
    data = build_stage_data(cfg, cfg.stages[0], qwen_tokenizer, progress=False)
    ds = data.dataset()
    multi = [i for i in range(len(ds)) if len(data.plan.segments_of(i)) >= 2]
    assert len(multi) >= 2
    a, b = multi[0], len(ds) - 1  # two sequences of different lengths: the collator pads one of them
    batch = ds.collator([ds[a], ds[b]])
    # the capture stored tail statistics at τ 2 (its default), so they travel with the batch
    assert set(batch) == {"input_ids", "labels", "position_ids", "kd_index", "kd_ids", "kd_logp", "kd_tail",
                          "kd_tmass", "kd_tnegent", "kd_smp"}
    assert batch["kd_smp"].shape == (len(batch["kd_index"]), 16)
    # the stored rows sit exactly at the positions whose next token is a target
    nxt = torch.zeros_like(batch["labels"], dtype=torch.bool)
    nxt[:, :-1] = batch["labels"][:, 1:] != -100
    assert torch.equal(batch["kd_index"], nxt.reshape(-1).nonzero()[:, 0])
    kw = dict(alpha=0.5, tau=2.0, tail=tail, n_real=len(qwen_tokenizer))
    with torch.no_grad():
        packed, _, _, n_packed, _ = kd_batch_loss(tiny_model, batch, **kw)
        alone, n_alone = 0.0, 0
        for i in (a, b):
            it = ds[i]
            for seg in data.plan.segments_of(i):
                s0, s1 = int(data.plan.start[seg]), int(data.plan.end[seg])
                # this sample's span inside the packed sequence
                off = sum(int(data.plan.end[x] - data.plan.start[x]) for x in data.plan.segments_of(i) if x < seg)
                n = s1 - s0
                sel = (it["kd_pos"] >= off) & (it["kd_pos"] < off + n)
                labels = it["labels"][off:off + n].clone()
                single = {"input_ids": it["input_ids"][None, off:off + n], "labels": labels[None],
                          "kd_index": it["kd_pos"][sel] - off, "kd_ids": it["kd_ids"][sel],
                          "kd_logp": it["kd_logp"][sel], "kd_tail": it["kd_tail"][sel],
                          "kd_tmass": it["kd_tmass"][sel], "kd_tnegent": it["kd_tnegent"][sel],
                          "kd_smp": it["kd_smp"][sel]}
                loss, _, _, m, _ = kd_batch_loss(tiny_model, single, **kw)
                alone += float(loss)
                n_alone += m
    assert n_packed == n_alone > 0
    assert abs(float(packed) - alone) / abs(alone) <= 1e-5


@pytest.mark.slow
def test_distill_stage_trains_under_zero3_and_records_its_loss(captured, tmp_path):
    from training.curriculum import run_training

    cfg = _train_cfg(captured, distill={"alpha": 0.5, "temperature": 2.0, "tail": "bucket"})
    cfg.output_dir = str(tmp_path / "run")
    out = run_training(cfg)
    run = json.loads((out / "run.json").read_text())
    st = run["stages"][0]
    assert run["kind"] == "distill" and st["global_step"] == 2
    assert st["distill"]["tail"] == "bucket" and st["distill"]["mode"] == "offline" and st["distill"]["k"] == [16]
    assert st["distill"]["tail_mass"] == "exact"  # the capture stored the τ-2 tail mass
    assert any(m["stage"] == "distill_logits" for m in st["manifests"])
    log = json.loads((out / "stages" / "01-kd" / "stage.json").read_text())["log_history"]
    assert any("kd_kl" in h and h["kd_kl"] > 0 for h in log)
    # the unbiased (sampled) KL is logged beside the bucket's, which misses the KL inside the tail
    assert all(h["kd_kl_unbiased"] > h["kd_kl"] for h in log if "kd_kl" in h)
    assert (out / "final" / "config.json").exists()


def test_sampled_tail_needs_draws_at_the_stages_temperature(captured, qwen_tokenizer):
    from corpora_manifests.errors import UserError
    from training.stage_data import build_stage_data

    cfg = _train_cfg(captured, distill={"alpha": 0.5, "temperature": 1.0, "tail": "sampled"})
    with pytest.raises(UserError, match="tail draws are at tau 2"):
        build_stage_data(cfg, cfg.stages[0], qwen_tokenizer, progress=False)
    cfg = _train_cfg(captured, distill={"alpha": 0.5, "temperature": 1.0, "tail": "bucket"})
    data = build_stage_data(cfg, cfg.stages[0], qwen_tokenizer, progress=False)
    assert data.summary()["distill"]["tail_mass"] == "even-tail estimate"  # no exact τ-1 tail was captured
    assert "kd_tmass" not in data.dataset()[0]


def test_online_teacher_mode_uses_the_sft_data_and_full_vocabulary_kl(captured, tiny_model, qwen_tokenizer, train_fixtures):
    from training import kd_loss
    from training.stage_data import build_stage_data

    cfg = _train_cfg(captured)
    stage = cfg.stages[0].model_copy(update={"manifests": [str(train_fixtures / "sft_stage2")]})
    stage.distill = stage.distill.model_copy(update={"teacher": str(captured / "teacher")})
    data = build_stage_data(cfg, stage, qwen_tokenizer, progress=False)
    ds = data.dataset()
    batch = ds.collator([ds[0], ds[len(ds) - 1]])
    assert "kd_ids" not in batch and data.summary()["distill"]["mode"] == "online"
    kw = dict(alpha=0.5, tau=2.0, tail="bucket", n_real=len(qwen_tokenizer))
    with torch.no_grad():
        loss, kl, ce, n, _ = kd_batch_loss(tiny_model, batch, teacher=tiny_model, **kw)
        assert abs(float(kl)) < 1e-4 * n and torch.isclose(loss, 0.5 * ce)  # a model distilled into itself
        from transformers import AutoModelForCausalLM

        teacher = AutoModelForCausalLM.from_pretrained(captured / "teacher", attn_implementation="sdpa").eval()
        loss, kl, ce, n, out = kd_batch_loss(tiny_model, batch, teacher=teacher, **kw)
        idx = (batch["labels"][:, 1:] != -100)
        zs = out.logits[:, :-1][idx]
        zt = teacher(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[:, :-1][idx]
        assert n == int(idx.sum()) and torch.allclose(kl, kd_loss.kl_full_sum(zs, zt, 2.0, len(qwen_tokenizer)), rtol=1e-4)
