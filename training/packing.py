"""Pack tokenised documents into fixed-length sequences with no attention across documents.

A packed sequence is a list of *segments* (flat token ranges of one source). Every segment gets
its own position ids starting at 0; with no attention mask transformers derives a block-diagonal
mask from those resets (sdpa/eager with ``use_cache=False``; FlashAttention-2 varlen likewise), so a
token never sees another document. The first token of every segment carries label -100: nothing
in the segment precedes it, and predicting it from the previous segment would leak across
documents in the loss.

CPT (``pack_stream``): documents (each ending with the separator) are laid end to end; a document
that does not fit is split and its remainder *carried* into the next sequence, re-starting with
the last token already placed as context, so every token of every document except its first is a
prediction target exactly once. Nothing is dropped.

SFT (``pack_best_fit``): whole conversations are bin-packed best-fit-decreasing, never split, so a
reply is never separated from its prompt.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PackPlan:
    """Segments of every packed sequence: ``seq[i]`` holds flat range [start, end) of ``src``."""

    seq_len: int
    seq: np.ndarray
    src: np.ndarray
    start: np.ndarray
    end: np.ndarray
    n_sequences: int
    stats: dict = field(default_factory=dict)

    def segments_of(self, i: int) -> range:
        lo = int(np.searchsorted(self.seq, i, side="left"))
        hi = int(np.searchsorted(self.seq, i, side="right"))
        return range(lo, hi)


def _doc_table(offsets_per_source: list[np.ndarray]):
    src, start, end = [], [], []
    for s, off in enumerate(offsets_per_source):
        off = np.asarray(off, dtype=np.int64)
        src.append(np.full(len(off) - 1, s, dtype=np.int32))
        start.append(off[:-1])
        end.append(off[1:])
    if not src:
        return np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(src), np.concatenate(start), np.concatenate(end)


def _stats(plan_len: np.ndarray, n_sequences: int, seq_len: int, doc_tokens: int, covered: int,
           repeats: int, n_docs: int) -> dict:
    total = n_sequences * seq_len
    real = int(plan_len.sum())
    return {
        "documents": n_docs,
        "document_tokens": doc_tokens,
        "sequences": n_sequences,
        "slots": total,
        "real_tokens": real,
        "padding_tokens": total - real,
        "context_repeats": repeats,
        "tokens_lost": doc_tokens - covered,
        # real / (sequences x seq_len): the fill if every sequence were padded to seq_len. Sequences
        # are not padded (see materialise), so at micro-batch 1 the trained slots are real_tokens.
        "efficiency": (real / total) if total else 1.0,
    }


def pack_stream(offsets_per_source: list[np.ndarray], seq_len: int, order: np.ndarray | None = None) -> PackPlan:
    """CPT packing: concatenate documents, split at sequence ends, carry the remainder."""
    d_src, d_start, d_end = _doc_table(offsets_per_source)
    if order is not None:
        d_src, d_start, d_end = d_src[order], d_start[order], d_end[order]
    seq, src, start, end = [], [], [], []
    cur, fill, repeats, covered = 0, 0, 0, 0
    for s, a, b in zip(d_src.tolist(), d_start.tolist(), d_end.tolist()):
        pos, first = a, True
        while pos < b:
            if seq_len - fill < 2:  # room for context + one new token is needed to make progress
                cur, fill = cur + 1, 0
            seg_start = pos if first else pos - 1  # a carried remainder re-reads one token as context
            take = min(b - seg_start, seq_len - fill)
            seq.append(cur); src.append(s); start.append(seg_start); end.append(seg_start + take)
            repeats += 0 if first else 1
            covered += take - (0 if first else 1)
            pos = seg_start + take
            fill += take
            first = False
            if fill == seq_len:
                cur, fill = cur + 1, 0
    n_seq = cur + (1 if fill else 0)
    plan = PackPlan(seq_len, np.asarray(seq, np.int64), np.asarray(src, np.int32), np.asarray(start, np.int64),
                    np.asarray(end, np.int64), n_seq)
    plan.stats = _stats(plan.end - plan.start, n_seq, seq_len, int((d_end - d_start).sum()), covered, repeats, len(d_src))
    return plan


def pack_best_fit(offsets_per_source: list[np.ndarray], seq_len: int) -> PackPlan:
    """SFT packing: best-fit-decreasing bin packing of whole samples (each ≤ seq_len)."""
    d_src, d_start, d_end = _doc_table(offsets_per_source)
    lengths = d_end - d_start
    if len(lengths) and int(lengths.max()) > seq_len:
        raise ValueError(f"a sample of {int(lengths.max())} tokens exceeds seq_len {seq_len}")
    order = np.argsort(-lengths, kind="stable")
    caps: list[tuple[int, int]] = []  # (remaining capacity, bin id), sorted
    bin_of = np.empty(len(lengths), dtype=np.int64)
    n_bins = 0
    for i in order.tolist():
        n = int(lengths[i])
        j = bisect.bisect_left(caps, (n, -1))
        if j < len(caps):
            cap, b = caps.pop(j)
        else:
            cap, b = seq_len, n_bins
            n_bins += 1
        bin_of[i] = b
        if cap - n > 0:
            bisect.insort(caps, (cap - n, b))
    by_bin = np.lexsort((np.arange(len(lengths)), bin_of)) if len(lengths) else np.zeros(0, np.int64)
    plan = PackPlan(seq_len, bin_of[by_bin], d_src[by_bin], d_start[by_bin], d_end[by_bin], n_bins)
    plan.stats = _stats(lengths, n_bins, seq_len, int(lengths.sum()), int(lengths.sum()), 0, len(lengths))
    return plan


def materialise(plan: PackPlan, i: int, tokens: list[np.ndarray], masks: list[np.ndarray | None]) -> dict[str, np.ndarray]:
    """input_ids, labels and position_ids of packed sequence ``i`` (no attention mask, by design).

    The sequence is not padded: a short last sequence costs only its own tokens, and the collator
    pads a micro-batch to its longest member (nothing at micro-batch 1, the paper configs' setting).
    """
    segs = plan.segments_of(i)
    n_total = int(sum(int(plan.end[k] - plan.start[k]) for k in segs))
    ids = np.empty(n_total, dtype=np.int64)
    labels = np.empty(n_total, dtype=np.int64)
    pos = np.empty(n_total, dtype=np.int64)
    fill = 0
    for k in segs:
        s, a, b = int(plan.src[k]), int(plan.start[k]), int(plan.end[k])
        n = b - a
        seg = np.asarray(tokens[s][a:b], dtype=np.int64)
        ids[fill:fill + n] = seg
        lab = seg.copy()
        if masks[s] is not None:
            lab[np.asarray(masks[s][a:b]) == 0] = -100
        lab[0] = -100  # nothing in this segment precedes its first token
        labels[fill:fill + n] = lab
        pos[fill:fill + n] = np.arange(n)
        fill += n
    return {"input_ids": ids, "labels": labels, "position_ids": pos}


class PackedCollator:
    """Stack packed sequences, padding to the longest in the micro-batch. Padding forms its own
    position-id segment (so it is isolated like a document) and carries label -100."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list[dict]) -> dict:
        import torch

        L = max(len(it["input_ids"]) for it in items)
        out = {"input_ids": torch.full((len(items), L), self.pad_id, dtype=torch.long),
               "labels": torch.full((len(items), L), -100, dtype=torch.long),
               "position_ids": torch.zeros((len(items), L), dtype=torch.long)}
        for r, it in enumerate(items):
            n = len(it["input_ids"])
            for k in out:
                out[k][r, :n] = torch.as_tensor(it[k])
            out["position_ids"][r, n:] = torch.arange(L - n)
        return out
