"""The HF Trainer for a distillation stage: same packing, checkpoints, resume and DeepSpeed as SFT;
only the loss differs (``kd_loss``): α·τ²·KL + (1−α)·CE over the supervised positions.

The model is called with the whole collated batch (minus labels and the kd_* rows), exactly as the
SFT trainer calls it; the loss is computed at the supervised positions only (logits at j, target
token j+1). The sum is divided by ``num_items_in_batch`` (the Trainer's count of supervised targets
over the whole accumulated step), like the Trainer's own causal-LM loss, so gradient accumulation
and several processes weight every position equally.
"""
from __future__ import annotations

from transformers import Trainer

from . import kd_loss

KD_KEYS = ("kd_index", "kd_ids", "kd_logp", "kd_tail", "kd_tmass", "kd_tnegent", "kd_smp")


def supervised_index(labels):
    """Flat b·L + j of every position whose next token is a target, row-major."""
    import torch

    B, L = labels.shape
    m = torch.zeros_like(labels, dtype=torch.bool)
    m[:, :-1] = labels[:, 1:] != -100
    return m.reshape(-1).nonzero()[:, 0]


def kd_batch_loss(model, inputs, *, alpha: float, tau: float, tail: str, n_real: int, teacher=None,
                  extras: dict | None = None):
    """(loss sum, KL sum, CE sum, positions) of one collated batch; ``inputs`` is not modified.
    ``extras`` receives ``kl_unbiased``: the sampled tail's KL (no gradient) when the batch carries
    tail draws and the trained tail is another."""
    import torch

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    kd = {k: inputs.pop(k) for k in KD_KEYS if k in inputs}
    out = model(**inputs, use_cache=False)
    logits = out.logits
    B, L, V = logits.shape
    idx = kd["kd_index"] if "kd_index" in kd else supervised_index(labels)
    sel = logits.reshape(B * L, V)[idx]
    targets = labels.reshape(-1)[idx + 1]
    ce = kd_loss.ce_sum(sel, targets, n_real)
    if teacher is not None:
        with torch.no_grad():
            t_logits = teacher(**inputs, use_cache=False).logits
            t_sel = t_logits.reshape(B * L, t_logits.shape[-1])[idx]
        kl = kd_loss.kl_full_sum(sel, t_sel, tau, n_real)
    else:
        stats = (kd["kd_tmass"], kd["kd_tnegent"], kd["kd_smp"]) if "kd_tmass" in kd else None
        s_all = kd_loss.student_logprobs(sel, tau, n_real)
        top = (kd["kd_ids"], kd["kd_logp"], kd["kd_tail"], tau)
        kl = kd_loss.kl_from_student_logprobs(s_all, *top, tail, tail_stats=stats)
        if extras is not None and stats is not None and tail != "sampled" and stats[2].shape[-1]:
            with torch.no_grad():  # logged beside the trained loss: the bucket's KL misses the KL inside the tail
                extras["kl_unbiased"] = kd_loss.kl_from_student_logprobs(s_all.detach(), *top, "sampled",
                                                                         tail_stats=stats)
    return kd_loss.combine(kl, ce, alpha, tau), kl, ce, int(idx.numel()), out


class KDTrainer(Trainer):
    def __init__(self, *args, distill, n_real: int, teacher=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.distill = distill
        self.n_real = n_real
        self.teacher = teacher
        self._kd_acc = [0.0, 0.0, 0, 0.0]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        extras: dict = {}
        loss_sum, kl, ce, n, out = kd_batch_loss(model, inputs, alpha=self.distill.alpha, tau=self.distill.temperature,
                                                 tail=self.distill.tail, n_real=self.n_real, teacher=self.teacher,
                                                 extras=extras)
        self._kd_acc[0] += float(kl.detach())
        self._kd_acc[1] += float(ce.detach())
        self._kd_acc[2] += n
        if "kl_unbiased" in extras:
            self._kd_acc[3] += float(extras["kl_unbiased"])
        denom = num_items_in_batch if num_items_in_batch is not None else max(n, 1)
        loss = loss_sum / denom
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # the Trainer averages over processes afterwards
        return (loss, out) if return_outputs else loss

    def log(self, logs, *args, **kwargs):
        if "loss" in logs and self._kd_acc[2]:
            kl, ce, n, kl_u = self._kd_acc
            logs["kd_kl"] = round(kl / n, 6)  # per supervised position, at temperature tau
            logs["kd_ce"] = round(ce / n, 6)
            if kl_u:
                logs["kd_kl_unbiased"] = round(kl_u / n, 6)  # the sampled estimate, when the capture has draws
            self._kd_acc = [0.0, 0.0, 0, 0.0]
        super().log(logs, *args, **kwargs)


def load_online_teacher(path: str, student, args):
    """A frozen teacher on the student's device and dtype, never partitioned by ZeRO-3 (it is not
    trained, and a partitioned module outside the engine would have no gather hooks)."""
    from pathlib import Path

    from transformers import AutoModelForCausalLM
    from transformers.integrations import deepspeed as hf_ds

    from corpora_manifests.errors import UserError

    if not (Path(path) / "config.json").exists():
        raise UserError(f"teacher {path} has no config.json (a local model directory; nothing is downloaded)")
    ds_cfg = hf_ds._hf_deepspeed_config_weak_ref() if hf_ds._hf_deepspeed_config_weak_ref else None
    hf_ds.unset_hf_deepspeed_config()
    try:
        teacher = AutoModelForCausalLM.from_pretrained(path, dtype=student.dtype, local_files_only=True,
                                                       attn_implementation=student.config._attn_implementation)
    finally:
        if ds_cfg is not None:
            hf_ds.set_hf_deepspeed_config(ds_cfg)
    teacher.config.use_cache = False
    teacher.requires_grad_(False)
    return teacher.to(args.device).eval()
