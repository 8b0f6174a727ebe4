"""Compact storage of a teacher's top-k next-token log-probabilities (offline distillation).

One *position* = the teacher's distribution for the next token there: k token ids, their
log-probabilities (temperature 1, normalised over the tokenizer's real ids) and the tail mass
``1 - sum(exp(logp))`` outside the top k. A shard row holds all supervised positions of one sample
as three byte strings (``ids``, ``vals``, ``aux``) whose layout depends on the encoding:

``raw``        ids int32 + log-probs float32 + tail float32 (8k + 4 B/position; the lossless reference)
``fp16``       ids int32 + log-probs float16 + tail float16 (6k + 2 B; "top-k in half precision")
``delta_q16``  ids sorted ascending, gaps as LEB128 varints; r = logp_max - logp quantised linearly
               to uint16 over [0, r_max]; aux = r_max (float16) + tail (float16) per position
``delta_q8``   as delta_q16 with uint8 and square-root companding (q = round(255·sqrt(r / r_max))),
               which spends the codes near the top where the probability mass is

Sorted ids make the gaps small (top-64 of 151,665 ids: gaps of ~2.4 k → mostly 2-byte varints),
and the varint stream still compresses under parquet's zstd. The delta encodings do not store
``logp_max``: it follows from the tail, ``logp_max = log(1 - tail) - logsumexp(-r)``, so the
decoded distribution always has exactly the stored mass ``1 - tail`` on the support.
Tolerances (``TOLERANCE``) are stated per encoding and checked by the round-trip test.

Optional ``tail`` column (capture ``tail_tau`` set; the same for every encoding): per position the
teacher's exact log τ-tail mass and the negentropy of its τ-tail conditional (float32 each, exact),
then m draws from that conditional (``kd_loss.tail_statistics``), ascending per position, as LEB128
gaps (a repeated id has gap 0): 8 + ~2m bytes per position.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ENCODINGS = ("delta_q8", "delta_q16", "fp16", "raw")
# Worst-case absolute error of a decoded log-prob relative to the position's top log-prob, as a
# fraction of that position's r_max (the log-prob range of its top k): half a quantisation step.
# delta_q8 is companded: its step is largest at r_max (2·255 - 1)/255² ≈ 0.0078, so 0.004 bounds it.
TOLERANCE = {"raw": 0.0, "fp16": 1e-3, "delta_q16": 0.5 / 65535 + 1e-6, "delta_q8": 0.004}
ENCODING_VERSION = 1


@dataclass
class TopK:
    """Decoded top-k of N positions: ids [N, k] (ascending for delta encodings), logp [N, k], tail [N]."""

    ids: np.ndarray
    logp: np.ndarray
    tail: np.ndarray

    def __len__(self) -> int:
        return len(self.tail)


# --- LEB128 varints, vectorised ------------------------------------------------------------------

def varint_encode(values: np.ndarray) -> bytes:
    v = np.asarray(values, dtype=np.uint64).ravel()
    if v.size == 0:
        return b""
    n = 1 + (v >= 1 << 7).astype(np.int64) + (v >= 1 << 14) + (v >= 1 << 21) + (v >= 1 << 28)
    start = np.zeros(len(v), dtype=np.int64)
    np.cumsum(n[:-1], out=start[1:])
    out = np.zeros(int(n.sum()), dtype=np.uint8)
    for i in range(5):
        m = n > i
        byte = (v[m] >> np.uint64(7 * i)) & np.uint64(0x7F)
        cont = (n[m] > i + 1).astype(np.uint64) << np.uint64(7)
        out[start[m] + i] = (byte | cont).astype(np.uint8)
    return out.tobytes()


def varint_decode(blob: bytes) -> np.ndarray:
    b = np.frombuffer(blob, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, dtype=np.int64)
    ends = (b & 0x80) == 0
    if not ends[-1]:
        raise ValueError("truncated varint stream")
    vid = np.cumsum(ends) - ends  # index of the value each byte belongs to
    starts = np.concatenate([[0], np.nonzero(ends)[0][:-1] + 1])
    shift = np.arange(b.size) - starts[vid]
    parts = (b & 0x7F).astype(np.int64) << (7 * shift)
    out = np.zeros(int(ends.sum()), dtype=np.int64)
    np.add.at(out, vid, parts)
    return out


# --- encode / decode ---------------------------------------------------------------------------------

def _sorted(t: TopK) -> TopK:
    order = np.argsort(t.ids, axis=1, kind="stable")
    return TopK(np.take_along_axis(t.ids, order, 1), np.take_along_axis(t.logp, order, 1), t.tail)


def encode(t: TopK, encoding: str) -> tuple[bytes, bytes, bytes]:
    """(ids, vals, aux) byte strings for N positions."""
    ids = np.asarray(t.ids, dtype=np.int64)
    logp = np.asarray(t.logp, dtype=np.float64)
    tail = np.clip(np.asarray(t.tail, dtype=np.float64), 0.0, 1.0)
    if encoding == "raw":
        return ids.astype("<i4").tobytes(), logp.astype("<f4").tobytes(), tail.astype("<f4").tobytes()
    if encoding == "fp16":
        return ids.astype("<i4").tobytes(), logp.astype("<f2").tobytes(), tail.astype("<f2").tobytes()
    if encoding not in ("delta_q8", "delta_q16"):
        raise ValueError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
    s = _sorted(TopK(ids, logp, tail))
    gaps = np.diff(s.ids, axis=1, prepend=-1) - 1  # ids are distinct: gaps >= 0
    r = s.logp.max(axis=1, keepdims=True) - s.logp
    rmax = r.max(axis=1)
    # the stored (float16) range, rounded up so every r fits; 0 for a one-token support
    rmax16 = rmax.astype("<f2")
    low = rmax16.astype(np.float64) < rmax
    rmax16[low] = np.nextafter(rmax16[low], np.float16(np.inf))
    scale = np.where(rmax16 > 0, rmax16.astype(np.float64), 1.0)[:, None]
    x = np.clip(r / scale, 0.0, 1.0)
    if encoding == "delta_q16":
        vals = np.rint(x * 65535).astype("<u2")
    else:
        vals = np.rint(np.sqrt(x) * 255).astype(np.uint8)
    aux = np.stack([rmax16, tail.astype("<f2")], axis=1)
    return varint_encode(gaps), vals.tobytes(), aux.tobytes()


def decode(ids_b: bytes, vals_b: bytes, aux_b: bytes, k: int, encoding: str) -> TopK:
    if encoding in ("raw", "fp16"):
        ids = np.frombuffer(ids_b, dtype="<i4").astype(np.int64).reshape(-1, k)
        dt = "<f4" if encoding == "raw" else "<f2"
        logp = np.frombuffer(vals_b, dtype=dt).astype(np.float32).reshape(-1, k)
        tail = np.frombuffer(aux_b, dtype=dt).astype(np.float32)
        return TopK(ids, logp, tail)
    if encoding not in ("delta_q8", "delta_q16"):
        raise ValueError(f"unknown encoding {encoding!r}")
    gaps = varint_decode(ids_b).reshape(-1, k)
    ids = np.cumsum(gaps + 1, axis=1) - 1
    aux = np.frombuffer(aux_b, dtype="<f2").astype(np.float64).reshape(-1, 2)
    rmax, tail = aux[:, 0:1], aux[:, 1]
    if encoding == "delta_q16":
        r = np.frombuffer(vals_b, dtype="<u2").reshape(-1, k) / 65535.0 * rmax
    else:
        r = (np.frombuffer(vals_b, dtype=np.uint8).reshape(-1, k) / 255.0) ** 2 * rmax
    neg = -r
    m = neg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(neg - m).sum(axis=1))
    top = np.log(np.clip(1.0 - tail, 1e-30, None)) - lse
    logp = neg + top[:, None]
    return TopK(ids, logp.astype(np.float32), tail.astype(np.float32))


def bytes_per_position_fixed(encoding: str, k: int) -> float | None:
    """Uncompressed bytes per position where the layout is fixed-size (None for varint ids)."""
    return {"raw": 8 * k + 4, "fp16": 6 * k + 2}.get(encoding)


# --- tail statistics and draws (the ``sampled`` tail) -----------------------------------------------

@dataclass
class Tail:
    """log_mass [N], negent [N] (float32), samples [N, m] (ascending ids)."""

    log_mass: np.ndarray
    negent: np.ndarray
    samples: np.ndarray


def encode_tail(t: Tail) -> bytes:
    head = np.stack([np.asarray(t.log_mass, "<f4"), np.asarray(t.negent, "<f4")], axis=1)
    s = np.sort(np.asarray(t.samples, dtype=np.int64), axis=1)
    gaps = np.diff(s, axis=1, prepend=0) if s.shape[1] else s
    return head.tobytes() + varint_encode(gaps)


def decode_tail(blob: bytes, n: int, m: int) -> Tail:
    head = np.frombuffer(blob[: 8 * n], dtype="<f4").reshape(n, 2)
    gaps = varint_decode(blob[8 * n:]).reshape(n, m)
    return Tail(head[:, 0].astype(np.float32), head[:, 1].astype(np.float32), np.cumsum(gaps, axis=1))
