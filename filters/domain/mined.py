"""A lexicon prior mined from the labelled training records: one weight per Chinese character bigram.

Why: held out of training, fastText's P(in) follows the *register* it learnt the domains in. The
permissive training data hold the domains mostly as formal prose (statutes, State Council
documents, exam items) and the general topics mostly as colloquial requests, so a colloquial legal
consultation (我父亲…担保人…要负责吗) scores like small talk, and the hand-written keyword regex
beats the model on instruction data it never saw. A naive-Bayes-style log ratio per bigram gives
every topic word its own evidence, whatever the sentence around it — fastText's discriminative fit
lets a few register characters explain the labels away instead.

Weight of bigram b: ``clip(log((df_in(b) + α) / (df_out(b) + α)), ±clip)``, where ``df_c`` is the
share of documents containing b, averaged over the *sources* of class c (no single source, e.g. the
statutes, dominates). A text's score is the mean weight over the CJK bigrams of its first
``window`` characters (unknown bigrams weigh 0). α, clip and the window were chosen on the
leave-one-family-out dev splits (docs/filters.md, stacking v4).

Scoring is vectorised over a batch (one UTF-32 encode, an open-addressing hash table built when the
lexicon is loaded), ~2 µs per text, so the classifier stays within its 50 k samples/s/core budget.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np

ALPHA = 1e-3
CLIP = 2.0
WINDOW = 128  # = stack.V4_WINDOW, fastText's own window
_LO, _HI = 0x4E00, 0x9FFF  # CJK unified ideographs: a code point fits 16 bits, a bigram key 32
_EMPTY = np.uint32(0xFFFFFFFF)  # no bigram of two ideographs has this key
_CHUNK = 4096
_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")


def bigrams(text: str, window: int = WINDOW) -> list[str]:
    """The CJK bigrams of the first ``window`` characters (runs of ideographs; nothing spans other characters)."""
    return [run[i:i + 2] for run in _RUN.findall(text[:window]) for i in range(len(run) - 1)]


class MinedLexicon:
    def __init__(self, keys: np.ndarray, weights: np.ndarray, meta: dict | None = None):
        order = np.argsort(keys, kind="stable")
        self.keys = np.asarray(keys, dtype=np.uint32)[order]
        self.weights = np.asarray(weights, dtype=np.float32)[order]
        self.meta = dict(meta or {})
        self._build_table()

    def _build_table(self) -> None:
        """An open-addressing hash table (linear probing, load ≤ 1/8): a lookup is a gather or two,
        where a binary search over the sorted keys cost ~6 µs per text."""
        bits = max(4, int(np.ceil(np.log2(max(1, len(self.keys)) * 8))))
        self._mask = np.uint32((1 << bits) - 1)
        self._shift = np.uint32(32 - bits)
        self._slots = np.full(1 << bits, _EMPTY, dtype=np.uint32)
        self._vals = np.zeros(1 << bits, dtype=np.float32)
        pending = np.arange(len(self.keys))
        h = self._hash(self.keys)
        while len(pending):
            cand = h[pending]
            free = self._slots[cand] == _EMPTY
            slot, first = np.unique(cand[free], return_index=True)  # one key per free slot per round
            won = pending[free][first]
            self._slots[slot], self._vals[slot] = self.keys[won], self.weights[won]
            pending = np.setdiff1d(pending, won, assume_unique=True)
            h[pending] = (h[pending] + 1) & self._mask

    def _hash(self, key: np.ndarray) -> np.ndarray:
        return ((key * np.uint32(0x9E3779B1)) >> self._shift) & self._mask  # Fibonacci hashing, wraps mod 2^32

    def _lookup(self, key: np.ndarray) -> np.ndarray:
        h = self._hash(key)
        s = self._slots[h]
        hit = s == key
        out = np.where(hit, self._vals[h], 0.0)
        # the few keys whose first slot holds another bigram walk the probe chain
        idx = np.flatnonzero(~hit & (s != _EMPTY))
        key, h = key[idx], (h[idx] + 1) & self._mask
        while len(idx):
            s = self._slots[h]
            hit = s == key
            out[idx[hit]] = self._vals[h[hit]]
            go = ~hit & (s != _EMPTY)
            idx, key, h = idx[go], key[go], (h[go] + 1) & self._mask
        return out

    @classmethod
    def from_weights(cls, table: dict[str, float], meta: dict | None = None) -> "MinedLexicon":
        keys = np.fromiter(((ord(k[0]) << 16) | ord(k[1]) for k in table), dtype=np.uint32, count=len(table))
        return cls(keys, np.fromiter(table.values(), dtype=np.float32, count=len(table)), meta)

    def score(self, texts: list[str], window: int | None = None) -> np.ndarray:
        """Mean bigram weight of each text's first ``window`` characters (0 for a text without a CJK bigram)."""
        window = int(window or self.meta.get("window", WINDOW))
        # in chunks: the temporaries of 4 k texts stay in cache, those of a 40 k batch cost page faults
        return np.concatenate([np.zeros(0)] + [self._score(texts[i:i + _CHUNK], window)
                                               for i in range(0, len(texts), _CHUNK)])

    def _score(self, texts: list[str], window: int) -> np.ndarray:
        n = len(texts)
        heads = [t[:window] for t in texts]
        lens = np.fromiter(map(len, heads), dtype=np.int64, count=n)
        # NUL-separated, so no bigram spans two texts; one extra NUL keeps every start inside the array
        cp = np.frombuffer(("\0".join(heads) + "\0\0").encode("utf-32-le"), dtype=np.uint32)
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lens[:-1] + 1, out=starts[1:])
        cjk = (cp >= _LO) & (cp <= _HI)
        ok = cjk[:-1] & cjk[1:]
        at = np.flatnonzero(ok)
        w = np.zeros(len(ok), dtype=np.float64)
        w[at] = self._lookup((cp[at] << 16) | cp[at + 1])
        s = np.add.reduceat(w, starts)
        c = np.add.reduceat(ok.astype(np.float64), starts)
        s[lens < 2] = 0.0  # reduceat gives an empty text the element at its start
        return s / np.maximum(c, 1)

    def save(self, path: str | Path) -> None:
        import json

        with open(path, "wb") as f:  # np.savez would append .npz to a name without it
            np.savez_compressed(f, keys=self.keys, weights=self.weights.astype(np.float16),
                                meta=np.array(json.dumps(self.meta, sort_keys=True)))

    @classmethod
    def load(cls, path: str | Path) -> "MinedLexicon":
        import json

        from corpora_manifests.errors import UserError

        if not Path(path).exists():
            raise UserError(f"mined lexicon {path} not found (it is written beside the domain model by "
                            "`soaes filters train-default`)")
        with np.load(path) as z:
            return cls(z["keys"], z["weights"].astype(np.float32), json.loads(str(z["meta"])))


def mine(records: Iterable[dict], is_in, alpha: float = ALPHA, clip: float = CLIP, window: int = WINDOW,
         min_weight: float = 0.02) -> MinedLexicon:
    """The lexicon of ``records`` (``text``, ``label``, ``source``); ``is_in(label)`` says which class.

    Bigrams whose weight is below ``min_weight`` in magnitude are left out (they weigh ~0 anyway):
    the stored table stays a few hundred kB.
    """
    by_cell: dict[tuple[bool, str], list[str]] = defaultdict(list)
    for r in records:
        by_cell[(bool(is_in(r["label"])), r["source"])].append(r["text"])
    df = {True: Counter(), False: Counter()}
    n_sources = Counter()
    for (cls_, _src), texts in sorted(by_cell.items()):
        c = Counter()
        for t in texts:
            c.update(set(bigrams(t, window)))
        df[cls_].update({k: v / len(texts) for k, v in c.items()})
        n_sources[cls_] += 1
    if not n_sources[True] or not n_sources[False]:
        raise ValueError("mining a lexicon needs records of both classes")
    table = {}
    for k in df[True].keys() | df[False].keys():
        w = float(np.clip(np.log((df[True][k] / n_sources[True] + alpha) / (df[False][k] / n_sources[False] + alpha)),
                          -clip, clip))
        if abs(w) >= min_weight:
            table[k] = w
    meta = {"alpha": alpha, "clip": clip, "window": window, "sources": {"in": n_sources[True], "out": n_sources[False]},
            "records": sum(len(v) for v in by_cell.values()), "bigrams": len(table)}
    return MinedLexicon.from_weights(dict(sorted(table.items())), meta)
