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
``bucket``       the tail is one extra outcome for both: the teacher's tail mass at τ is the exact
                 one the capture stored for this τ, or else assumes the tail spread evenly over the
                 other V−k ids ((V−k)·(tail/(V−k))^{1/τ}, exact at τ = 1); the student's is 1 − its
                 mass on the teacher's top k.
``sampled``      the tail term itself, unbiased: KL = Σ_top + Σ_tail p^τ_i (log p^τ_i − log q^τ_i).
                 With the teacher's exact τ-tail mass P, the exact negentropy h of its tail
                 conditional c = p^τ/P (both stored at capture), and m ids drawn from c:
                 Σ_tail … = P·(log P + h − E_c[log q^τ]) ≈ P·(log P + h − mean_j log q^τ_{s_j}).
                 The bucket drops P·KL(c ‖ q^τ|tail), the teacher's ranking inside its tail, which
                 no top-k format stores and which dominates at τ 2 unless the teacher is very sharp
                 (benchmarks/distill.py); the samples carry it at ~2 B per draw. The draws are
                 systematic (one uniform per position, m evenly spaced quantiles of c in id order):
                 every draw is still distributed as c, so the estimate stays unbiased, with less
                 variance than independent draws, and the ids come out sorted for delta coding.

With k = V (tail 0) every mode equals the full-vocabulary loss exactly.
"""
from __future__ import annotations

import math

TAIL_MODES = ("renormalize", "bucket", "sampled")


def _real(logits, n_real: int | None):
    return logits if n_real is None or logits.shape[-1] <= n_real else logits[..., :n_real]


def student_logprobs(student_logits, tau: float, n_real: int | None = None):
    """The student's τ-log-probs over the real vocabulary [N, V_real]: computed once per batch, every
    KL below reads its columns."""
    import torch

    return torch.log_softmax(_real(student_logits, n_real).float() / tau, dim=-1)


def kl_topk_sum(student_logits, ids, logp, tail, tau: float, tail_mode: str, n_real: int | None = None,
                tail_stats=None):
    """Σ over positions of KL(teacher^τ ‖ student^τ) from a stored top-k; student_logits [N, V].

    ``tail_stats`` = (log_mass [N], negent [N], sample ids [N, m]) from ``tail_statistics`` at this τ:
    required by ``sampled``; ``bucket`` then uses the exact τ-tail mass."""
    return kl_from_student_logprobs(student_logprobs(student_logits, tau, n_real), ids, logp, tail, tau, tail_mode,
                                    tail_stats)


def kl_from_student_logprobs(s_all, ids, logp, tail, tau: float, tail_mode: str, tail_stats=None):
    """``kl_topk_sum`` from the student's τ-log-probs (``student_logprobs``)."""
    s_top = s_all.gather(-1, ids.long())
    if tail_stats is None:
        return kl_from_student_topk(s_top, logp, tail, tau, tail_mode, s_all.shape[-1])
    log_mass, negent, smp = tail_stats
    s_smp = s_all.gather(-1, smp.long()) if smp.shape[-1] else None
    return kl_from_student_topk(s_top, logp, tail, tau, tail_mode, s_all.shape[-1], log_mass=log_mass, negent=negent,
                                s_samples=s_smp)


def kl_from_student_topk(s_top, logp, tail, tau: float, tail_mode: str, vocab: int, log_tail_tau=None,
                         log_mass=None, negent=None, s_samples=None):
    """The same KL given the student's τ-log-probs at the teacher's k ids (``s_top`` [N, k]).

    ``log_tail_tau`` [N] (bucket only): the teacher's exact log Σ_tail p^(1/τ) when it is known
    (benchmarks/distill.py measures with it how much of the error is the even-tail assumption).
    ``log_mass`` / ``negent`` [N]: the teacher's exact τ-tail mass (log) and its tail conditional's
    negentropy, as captured; ``s_samples`` [N, m]: the student's τ-log-probs at the drawn tail ids."""
    import torch

    if tail_mode not in TAIL_MODES:
        raise ValueError(f"tail_mode must be one of {TAIL_MODES}, not {tail_mode!r}")
    t = logp.float() / tau
    if tail_mode == "renormalize":
        t_logp = t - torch.logsumexp(t, dim=-1, keepdim=True)
        return (t_logp.exp() * (t_logp - s_top)).sum()
    if tail_mode == "sampled" and (log_mass is None or negent is None or s_samples is None
                                   or s_samples.shape[-1] == 0):
        raise ValueError("tail_mode 'sampled' needs the captured tail statistics and tail samples")
    k = logp.shape[-1]
    tail = tail.float().clamp(min=0.0)
    if log_tail_tau is not None:
        log_tail_tau = log_tail_tau.float()
    elif log_mass is not None:  # exact: Σ_tail p^(1/τ) = Σ_top p^(1/τ) · P / (1 − P)
        lm = log_mass.float()
        log_tail_tau = torch.logsumexp(t, dim=-1) + lm - torch.log1p(-lm.exp().clamp(max=1.0 - 1e-7))
    elif vocab > k:
        log_tail_tau = math.log(vocab - k) + (torch.log(tail) - math.log(vocab - k)) / tau  # -inf where tail == 0
    else:
        log_tail_tau = torch.full_like(tail, -math.inf)
    z_t = torch.logsumexp(torch.cat([t, log_tail_tau[:, None]], dim=-1), dim=-1, keepdim=True)
    t_logp = t - z_t
    log_p_tail = (log_tail_tau[:, None] - z_t)[:, 0]
    p_tail = log_p_tail.exp()
    kl = (t_logp.exp() * (t_logp - s_top)).sum()
    if tail_mode == "sampled":
        inside = log_p_tail + negent.float() - s_samples.float().mean(dim=-1)
    else:
        # student's mass outside the teacher's top k: log(1 - Σ_topk q), kept finite
        s_in = torch.logsumexp(s_top, dim=-1).clamp(max=-1e-7)
        inside = log_p_tail - torch.log(-torch.expm1(s_in))
    tail_term = torch.where(p_tail > 0, p_tail * inside.clamp(min=-1e30), torch.zeros_like(p_tail))
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

    return topk_of_logprobs(torch.log_softmax(_real(teacher_logits, n_real).float(), dim=-1), k)


def topk_of_logprobs(lp, k: int):
    """``topk_of_logits`` from the temperature-1 log-probs themselves (the capture reuses them)."""
    import torch

    k = min(k, lp.shape[-1])
    logp, ids = lp.topk(k, dim=-1)
    tail = (-torch.expm1(torch.logsumexp(logp, dim=-1))).clamp(min=0.0)
    return ids, logp, tail


def tail_statistics(lp, top_ids, tau: float, m: int, generator=None):
    """What the ``sampled`` tail needs, from a teacher's full temperature-1 log-probs ``lp`` [N, V]
    (real ids only) and its top-k ids: (log τ-tail mass [N], negentropy of the τ-tail conditional [N],
    m systematic draws from that conditional [N, m], ascending ids).

    Systematic draws: u ~ U(0, 1/m) per position, quantiles u + j/m of the conditional's CDF in id
    order. ``generator`` (a torch.Generator) makes them reproducible."""
    import torch

    N = lp.shape[0]
    t = lp.float() / tau
    t.scatter_(-1, top_ids.long(), -math.inf)
    lse_tail = torch.logsumexp(t, dim=-1)                                   # log Σ_tail p^(1/τ)
    lse_all = torch.logsumexp(torch.stack([lse_tail, torch.logsumexp(lp.float().gather(-1, top_ids.long()) / tau, -1)]), 0)
    log_mass = lse_tail - lse_all
    empty = torch.isinf(lse_tail)
    t.sub_(torch.where(empty, torch.zeros_like(lse_tail), lse_tail)[:, None])  # log of the tail conditional
    c = t.exp_()                                                            # in place: [N, V] once
    negent = torch.special.xlogy(c, c).sum(-1)
    if m <= 0 or N == 0:
        return log_mass, negent, torch.zeros((N, 0), dtype=torch.long)
    cdf = c.double().cumsum_(-1)
    u = (torch.rand((N, 1), generator=generator, dtype=torch.float64) + torch.arange(m, dtype=torch.float64)) / m
    u = u * cdf[:, -1:].clamp(min=1e-300)                                  # the cumsum's own total (rounding)
    smp = torch.searchsorted(cdf, u, right=True).clamp_(max=lp.shape[-1] - 1)
    smp[empty] = 0
    return log_mass, torch.where(empty, torch.zeros_like(negent), negent), smp
