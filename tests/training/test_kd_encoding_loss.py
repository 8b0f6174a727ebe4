"""Top-k storage and the KD loss: k = V equals the full-vocabulary loss; every encoding round-trips
within its stated tolerance; padding columns of the vocabulary never carry probability."""
import math

import numpy as np
import pytest
import torch

from training import kd_encoding as enc
from training import kd_loss


def _logits(n=24, V=300, seed=0, scale=4.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, V, generator=g) * scale


@pytest.mark.parametrize("mode", kd_loss.TAIL_MODES)
@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_topk_with_k_equal_vocab_is_the_full_loss(mode, tau):
    zs, zt = _logits(seed=1), _logits(seed=2)
    targets = torch.randint(0, zs.shape[1], (zs.shape[0],), generator=torch.Generator().manual_seed(3))
    ids, logp, tail = kd_loss.topk_of_logits(zt, k=zt.shape[1])
    full = kd_loss.combine(kd_loss.kl_full_sum(zs, zt, tau), kd_loss.ce_sum(zs, targets), 0.5, tau)
    # the reference KL from torch's own kl_div, independent of kl_full_sum
    ref_kl = torch.nn.functional.kl_div(torch.log_softmax(zs / tau, -1), torch.log_softmax(zt / tau, -1),
                                        reduction="sum", log_target=True)
    assert torch.allclose(kd_loss.kl_full_sum(zs, zt, tau), ref_kl, rtol=1e-5)
    stats = kd_loss.tail_statistics(torch.log_softmax(zt, -1), ids, tau, 4) if mode == "sampled" else None
    top = kd_loss.combine(kd_loss.kl_topk_sum(zs, ids, logp, tail, tau, mode, tail_stats=stats),
                          kd_loss.ce_sum(zs, targets), 0.5, tau)
    assert abs(top.item() - full.item()) / abs(full.item()) <= 1e-5


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_sampled_tail_is_unbiased_where_the_bucket_is_not(tau):
    # a teacher whose top 8 of 300 ids hold little of its τ-mass: the bucket misses the KL inside the
    # tail; the sampled tail term averages to the full KL (many positions, as a training set has)
    zt = _logits(n=2000, seed=5, scale=3.0)
    zs = 0.6 * zt + _logits(n=2000, seed=4, scale=1.5)  # a student that has learnt something of the teacher
    ids, logp, tail = kd_loss.topk_of_logits(zt, k=8)
    full = kd_loss.kl_full_sum(zs, zt, tau).item()
    g = torch.Generator().manual_seed(6)
    stats = kd_loss.tail_statistics(torch.log_softmax(zt, -1), ids, tau, 16, g)
    # the statistics are exact: tail mass and conditional negentropy from the full distribution
    p = torch.softmax(zt / tau, -1)
    in_top = torch.zeros_like(p, dtype=torch.bool).scatter_(-1, ids, True)
    mass = p.masked_fill(in_top, 0).sum(-1)
    assert torch.allclose(stats[0].exp(), mass, rtol=1e-4)
    c = p.masked_fill(in_top, 0) / mass[:, None]
    assert torch.allclose(stats[1], torch.special.xlogy(c, c).sum(-1), rtol=1e-4, atol=1e-5)
    # draws never hit the top k, come out ascending, and follow the conditional (the last check below)
    assert not in_top.gather(-1, stats[2]).any() and bool((stats[2].diff(dim=-1) >= 0).all())
    sampled = kd_loss.kl_topk_sum(zs, ids, logp, tail, tau, "sampled", tail_stats=stats).item()
    bucket = kd_loss.kl_topk_sum(zs, ids, logp, tail, tau, "bucket", tail_stats=stats).item()
    assert abs(sampled - full) / full < 0.01
    assert abs(bucket - full) / full > 0.1
    # draws from the wrong distribution (the τ-1 tail at τ 2, or uniform) would be visibly off
    wrong = kd_loss.tail_statistics(torch.log_softmax(zt, -1), ids, 1.0 if tau == 2.0 else 3.0, 16, g)
    off = kd_loss.kl_topk_sum(zs, ids, logp, tail, tau, "sampled", tail_stats=(stats[0], stats[1], wrong[2])).item()
    assert abs(off - full) / full > 0.02


def test_tail_statistics_round_trip_through_their_column():
    zt = _logits(n=50, V=3000, seed=7)
    ids, _, _ = kd_loss.topk_of_logits(zt, k=16)
    st = enc.Tail(*(x.numpy() for x in kd_loss.tail_statistics(torch.log_softmax(zt, -1), ids, 2.0, 16)))
    blob = enc.encode_tail(st)
    back = enc.decode_tail(blob, 50, 16)
    assert np.array_equal(back.samples, st.samples)
    assert np.array_equal(back.log_mass, st.log_mass) and np.array_equal(back.negent, st.negent)
    assert len(blob) < 50 * (8 + 16 * 2)  # float32 pair + ≤ 2-byte gaps over 3,000 ids


def test_padding_columns_take_no_mass():
    zs, zt = _logits(seed=4), _logits(seed=5)
    n_real = 280
    padded_s, padded_t = zs.clone(), zt.clone()
    padded_s[:, n_real:] = 50.0  # a padded row that would dominate any softmax it entered
    padded_t[:, n_real:] = 50.0
    ids, logp, tail = kd_loss.topk_of_logits(padded_t, k=16, n_real=n_real)
    assert int(ids.max()) < n_real
    ref_ids, ref_logp, _ = kd_loss.topk_of_logits(zt[:, :n_real], k=16)
    assert torch.equal(ids, ref_ids) and torch.allclose(logp, ref_logp)
    a = kd_loss.kl_topk_sum(padded_s, ids, logp, tail, 2.0, "bucket", n_real=n_real)
    b = kd_loss.kl_topk_sum(zs[:, :n_real], ids, logp, tail, 2.0, "bucket")
    assert torch.allclose(a, b)


def test_truncated_topk_bucket_is_exact_at_tau_1_when_the_student_tail_matches():
    # at τ = 1 the bucket KL equals the KL of the two distributions coarsened to (top k, rest)
    zs, zt = _logits(seed=6, scale=2.0), _logits(seed=7, scale=2.0)
    ids, logp, tail = kd_loss.topk_of_logits(zt, k=8)
    s = torch.log_softmax(zs, -1)
    s_top = s.gather(-1, ids)
    s_tail = torch.log1p(-s_top.exp().sum(-1))
    p_top, p_tail = logp.exp(), tail
    ref = (p_top * (logp - s_top)).sum() + (p_tail * (torch.log(p_tail) - s_tail)).sum()
    got = kd_loss.kl_topk_sum(zs, ids, logp, tail, 1.0, "bucket")
    assert torch.allclose(got, ref, rtol=1e-5)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_bucket_is_the_full_kl_when_both_tails_agree_within_the_tail(tau):
    # KL_full = KL over (top k, tail) + P_tail · KL(tail conditionals): with the teacher's exact τ-tail
    # and a student whose tail (but not its top k) is the teacher's shifted, the bucket is the full KL;
    # with an even teacher tail the default estimate (V−k)·(tail/(V−k))^(1/τ) is that exact τ-tail
    V, k = 300, 16
    zt = _logits(V=V, seed=10, scale=3.0)
    ids, logp, tail = kd_loss.topk_of_logits(zt, k=k)
    zs = zt.clone() + 0.7
    zs.scatter_(-1, ids, zt.gather(-1, ids) + _logits(n=zt.shape[0], V=k, seed=11))
    s_top = torch.log_softmax(zs / tau, -1).gather(-1, ids)
    full = kd_loss.kl_full_sum(zs, zt, tau)
    lp = torch.log_softmax(zt, -1)
    in_top = torch.zeros_like(lp, dtype=torch.bool).scatter_(-1, ids, True)
    exact = torch.logsumexp(torch.where(in_top, -math.inf, lp / tau), -1)
    got = kd_loss.kl_from_student_topk(s_top, logp, tail, tau, "bucket", V, log_tail_tau=exact)
    assert torch.allclose(got, full, rtol=1e-4)
    estimated = kd_loss.kl_from_student_topk(s_top, logp, tail, tau, "bucket", V)
    assert torch.allclose(estimated, full, rtol=1e-4) == (tau == 1.0)  # an uneven tail: exact only at τ 1
    # an even teacher tail (and the student's tail even too): the default estimate is exact at any τ
    zt_even = torch.where(in_top, zt, torch.full_like(zt, -2.0))
    zs_even = torch.where(in_top, zs, torch.full_like(zs, -1.0))
    ids_e, logp_e, tail_e = kd_loss.topk_of_logits(zt_even, k=k)
    assert torch.equal(ids_e.sort(-1).values, ids.sort(-1).values)
    got_e = kd_loss.kl_topk_sum(zs_even, ids_e, logp_e, tail_e, tau, "bucket")
    assert torch.allclose(got_e, kd_loss.kl_full_sum(zs_even, zt_even, tau), rtol=1e-4)


def test_varint_round_trip_edges():
    v = np.array([0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 151664, 2**28 + 5], dtype=np.int64)
    assert np.array_equal(enc.varint_decode(enc.varint_encode(v)), v)
    assert len(enc.varint_encode(np.array([127, 128]))) == 3


@pytest.mark.parametrize("encoding", enc.ENCODINGS)
def test_every_encoding_round_trips_within_its_tolerance(encoding):
    zt = _logits(n=40, V=151665 // 50, seed=8, scale=3.0)
    ids, logp, tail = (x.numpy() for x in kd_loss.topk_of_logits(zt, k=64))
    t = enc.TopK(ids, logp, tail)
    back = enc.decode(*enc.encode(t, encoding), k=64, encoding=encoding)
    # same support per position, values compared id by id
    order_a, order_b = np.argsort(ids, 1), np.argsort(back.ids, 1)
    ia, ib = np.take_along_axis(ids, order_a, 1), np.take_along_axis(back.ids, order_b, 1)
    assert np.array_equal(ia, ib)
    la, lb = np.take_along_axis(logp, order_a, 1), np.take_along_axis(back.logp, order_b, 1)
    ra, rb = la.max(1, keepdims=True) - la, lb.max(1, keepdims=True) - lb
    rmax = ra.max(1, keepdims=True)
    if encoding in ("delta_q8", "delta_q16"):
        # relative to the top: within the stated fraction of the range (+ the float16 range rounding)
        assert np.all(np.abs(ra - rb) <= enc.TOLERANCE[encoding] * rmax * (1 + 2e-3) + 1e-6)
        # the decoded support carries exactly the stored mass 1 - tail
        assert np.allclose(np.exp(lb.astype(np.float64)).sum(1), 1 - back.tail, rtol=1e-5)
    elif encoding == "fp16":
        assert np.all(np.abs(la - lb) <= np.abs(la) * enc.TOLERANCE["fp16"] + 1e-6)
    else:
        assert np.array_equal(la, lb)
    assert np.allclose(back.tail, tail, rtol=1e-3, atol=6e-8)


def test_compact_encoding_is_smaller_than_fp16_at_k64():
    zt = _logits(n=50, V=151665 // 10, seed=9, scale=3.0)
    t = enc.TopK(*(x.numpy() for x in kd_loss.topk_of_logits(zt, k=64)))
    size = {e: sum(len(b) for b in enc.encode(t, e)) / 50 for e in enc.ENCODINGS}
    assert size["delta_q8"] < size["delta_q16"] < size["fp16"] < size["raw"]
    assert size["fp16"] == enc.bytes_per_position_fixed("fp16", 64)
