"""Decontamination: drop a sample that shares a long character n-gram with an evaluation set.

Texts are normalised (NFKC, lower case, whitespace and punctuation removed) so that re-formatting
cannot hide an overlap. Every field of every evaluation item is indexed separately (n-grams never
span two fields). The index stores the 64-bit hashes of the evaluation n-grams taken every
``stride`` characters; a sample is checked at *every* position, so any shared substring of at least
``n + stride - 1`` normalised characters is always found (and most of length ``n`` are). Keys are
Python's string hash: the index is built in the process that queries it (each datatrove task
builds its own), so per-process hash seeds do not matter and hashing costs ~50 ns per n-gram.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .text import normalise_for_match

# Fields of evaluation items that carry text (LawBench, DISC-Law/Fin eval, Alpaca, our SFT shards).
EVAL_TEXT_FIELDS = ("instruction", "input", "output", "question", "reference", "answer", "response", "prompt",
                    "text", "query", "context")


def eval_texts(rec: dict) -> Iterator[str]:
    for k in EVAL_TEXT_FIELDS:
        v = rec.get(k)
        if isinstance(v, str) and v.strip():
            yield v
    opts = rec.get("options")
    if isinstance(opts, dict):
        yield from (v for v in opts.values() if isinstance(v, str))
    for key in ("messages", "conversations"):
        msgs = rec.get(key)
        if isinstance(msgs, list):
            for m in msgs:
                if isinstance(m, dict):
                    c = m.get("content", m.get("value"))
                    if isinstance(c, str) and c.strip():
                        yield c


def iter_eval_records(path: str | Path) -> Iterator[dict]:
    """Records of an evaluation set: a JSONL/JSON/parquet file, a directory of them, or a manifest dir."""
    path = Path(path)
    if path.is_dir() and (path / "manifest.json").exists():
        from corpora_manifests.shards import iter_rows

        yield from iter_rows(path)
        return
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    for f in files:
        name = f.name.lower()
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(f).iter_batches(batch_size=2048):
                yield from batch.to_pylist()
        elif name.endswith(".json"):
            data = json.loads(f.read_text(encoding="utf-8"))
            yield from (data if isinstance(data, list) else data.get("data", [data]))
        elif name.endswith(".jsonl"):
            from corpora_manifests.jsonl import iter_jsonl_lines

            # an eval set's bad bytes still decontaminate (replacement chars); unparsable lines are skipped
            with f.open(encoding="utf-8", errors="replace") as fh:
                yield from (rec for _, rec, _ in iter_jsonl_lines(fh, objects_only=False) if rec is not None)


@dataclass
class Hit:
    eval_set: str
    eval_id: str
    ngram: str


class NgramIndex:
    def __init__(self, n: int = 30, stride: int = 1):
        if n < 8:
            raise ValueError("decontamination n-grams shorter than 8 characters match common phrases")
        self.n = n
        self.stride = max(1, stride)
        self._index: dict[int, tuple[str, str]] = {}
        self.items = 0

    def __len__(self) -> int:
        return len(self._index)

    def add(self, text: str, eval_set: str, eval_id: str) -> None:
        t = normalise_for_match(text)
        n = self.n
        if len(t) < n:
            return
        for i in range(0, len(t) - n + 1, self.stride):
            self._index.setdefault(hash(t[i:i + n]), (eval_set, eval_id))
        # Always index the tail so short items are covered whatever the stride.
        self._index.setdefault(hash(t[-n:]), (eval_set, eval_id))

    def add_records(self, records: Iterable[dict], eval_set: str) -> int:
        k = 0
        for i, rec in enumerate(records):
            rid = str(rec.get("id", i)) if isinstance(rec, dict) else str(i)
            if not isinstance(rec, dict):
                continue
            for text in eval_texts(rec):
                self.add(text, eval_set, rid)
            k += 1
        self.items += k
        return k

    def find(self, text: str) -> Hit | None:
        t = normalise_for_match(text)
        n = self.n
        idx = self._index
        for i in range(0, len(t) - n + 1):
            g = t[i:i + n]
            hit = idx.get(hash(g))
            if hit is not None:
                return Hit(hit[0], hit[1], g)
        return None
