"""The paper's distillation loss: L = α·τ²·KL(p_T^τ ‖ p_S^τ) + (1−α)·CE, per supervised position.

Alignment: the logits at position j predict token j+1, so a position j is supervised when token
j+1 is a loss (assistant) token; the teacher's stored distribution for position j and the
student's logits at j describe the same next token. All functions here take the rows of those
positions only.

Vocabulary padding: Qwen2.5 checkpoints pad the embedding to 151,936 (or 152,064) rows while the
tokenizer has 151,665 real ids. Only the first ``n_real`` logit columns enter any softmax: a
padding column never takes probability mass from the student (or the teacher at capture).

From a stored top-k (``logp`` at temperature 1, ``tail`` = mass outside the top k) the teacher at
temperature τ is, on its support, proportional to exp(logp/τ). Two ways to treat the rest:

``renormalize``  the teacher is renormalised over its top k (it puts no mass elsewhere); the KL
                 sums over the support against the student's full-vocabulary log-probs.
``bucket``       the tail is one extra outcome for both: the teacher's tail mass at τ assumes the
                 tail spread evenly over the other V−k ids ((V−k)·(tail/(V−k))^{1/τ}, exact at
                 τ = 1), the student's is 1 − its mass on the teacher's top k.

With k = V (tail 0) both equal the full-vocabulary loss exactly.
"""
from __future__ import annotations

import math

TAIL_MODES = ("renormalize", "bucket")


def _real(logits, n_real: int | None):
    return logits if n_real is None or logits.shape[-1] <= n_real else logits[..., :n_real]


def kl_topk_sum(student_logits, ids, logp, tail, tau: float, tail_mode: str, n_real: int | None = None):
    """Σ over positions of KL(teacher^τ ‖ student^τ) from a stored top-k; student_logits [N, V]."""
    import torch

    z = _real(student_logits, n_real).float()
    s_top = torch.log_softmax(z / tau, dim=-1).gather(-1, ids.long())
    return kl_from_student_topk(s_top, logp, tail, tau, tail_mode, z.shape[-1])


def kl_from_student_topk(s_top, logp, tail, tau: float, tail_mode: str, vocab: int, log_tail_tau=None):
    """The same KL given the student's τ-log-probs at the teacher's k ids (``s_top`` [N, k]).

    ``log_tail_tau`` [N] (bucket only): the teacher's exact log Σ_tail p^(1/τ) when it is known
    (benchmarks/distill.py measures with it how much of the error is the even-tail assumption)."""
    import torch

    if tail_mode not in TAIL_MODES:
        raise ValueError(f"tail_mode must be one of {TAIL_MODES}, not {tail_mode!r}")
    t = logp.float() / tau
    if tail_mode == "renormalize":
        t_logp = t - torch.logsumexp(t, dim=-1, keepdim=True)
        return (t_logp.exp() * (t_logp - s_top)).sum()
    k = logp.shape[-1]
    tail = tail.float().clamp(min=0.0)
    if log_tail_tau is not None:
        log_tail_tau = log_tail_tau.float()
    elif vocab > k:
        log_tail_tau = math.log(vocab - k) + (torch.log(tail) - math.log(vocab - k)) / tau  # -inf where tail == 0
    else:
        log_tail_tau = torch.full_like(tail, -math.inf)
    z_t = torch.logsumexp(torch.cat([t, log_tail_tau[:, None]], dim=-1), dim=-1, keepdim=True)
    t_logp = t - z_t
    p_tail = (log_tail_tau[:, None] - z_t).exp()[:, 0]
    kl = (t_logp.exp() * (t_logp - s_top)).sum()
    # student's mass outside the teacher's top k: log(1 - Σ_topk q), kept finite
    s_in = torch.logsumexp(s_top, dim=-1).clamp(max=-1e-7)
    s_tail = torch.log(-torch.expm1(s_in))
    tail_term = torch.where(p_tail > 0, p_tail * (torch.log(p_tail.clamp(min=1e-30)) - s_tail), torch.zeros_like(p_tail))
    return kl + tail_term.sum()


def kl_full_sum(student_logits, teacher_logits, tau: float, n_real: int | None = None):
    """Σ over positions of KL(softmax(z_T/τ) ‖ softmax(z_S/τ)) over the real vocabulary."""
    import torch

    s = torch.log_softmax(_real(student_logits, n_real).float() / tau, dim=-1)
    t = torch.log_softmax(_real(teacher_logits, n_real).float() / tau, dim=-1)
    return (t.exp() * (t - s)).sum()


def ce_sum(student_logits, targets, n_real: int | None = None):
    import torch

    return torch.nn.functional.cross_entropy(_real(student_logits, n_real).float(), targets.long(), reduction="sum")


def combine(kl_sum, ce_sum_, alpha: float, tau: float):
    """α·τ²·KL + (1−α)·CE, both still sums over positions (the caller divides by the count)."""
    return alpha * tau * tau * kl_sum + (1.0 - alpha) * ce_sum_


def topk_of_logits(teacher_logits, k: int, n_real: int | None = None):
    """(ids, logp, tail) of the top k of temperature-1 log-probs over the real vocabulary."""
    import torch

    lp = torch.log_softmax(_real(teacher_logits, n_real).float(), dim=-1)
    k = min(k, lp.shape[-1])
    logp, ids = lp.topk(k, dim=-1)
    tail = (-torch.expm1(torch.logsumexp(logp, dim=-1))).clamp(min=0.0)
    return ids, logp, tail
