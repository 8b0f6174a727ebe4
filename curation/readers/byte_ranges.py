"""Byte ranges of one large JSON-lines file, so several tasks read it instead of one.

datatrove splits inputs by file (``files[rank::world_size]``): a corpus delivered as one 60 GB
``dump.jsonl`` runs on one task while the others idle. A plain (uncompressed, seekable) JSON-lines
file larger than ``split_bytes`` is cut into up to ``world_size`` byte ranges, each a work unit.

A range ``[start, end)`` owns the lines whose first byte lies in it: it skips to the first line
starting at or after ``start`` and reads through the line that straddles ``end``. Every line is read by
exactly one range, and line numbers (the documents' ids when a record has none) are counted from the
file's start, so ids and documents are the same as one task reading the whole file.
"""
from __future__ import annotations

import io
from typing import BinaryIO

SPLITTABLE = (".jsonl", ".ndjson")  # uncompressed JSON lines only: .gz/.zst cannot be entered mid-stream
_CHUNK = 8 << 20


def plan_units(files: list[tuple[str, int | None]], world_size: int, split_bytes: int
               ) -> list[tuple[str, tuple[int, int, int] | None]]:
    """``(path, size or None)`` in listing order -> work units ``(path, (part, start, end) | None)``.
    With one task, or no file above ``split_bytes``, this is one unit per file (datatrove's split)."""
    units: list[tuple[str, tuple[int, int, int] | None]] = []
    for path, size in files:
        parts = 1
        if world_size > 1 and size and size > split_bytes and path.lower().endswith(SPLITTABLE):
            parts = min(world_size, -(-size // split_bytes))
        if parts == 1:
            units.append((path, None))
            continue
        bounds = [size * k // parts for k in range(parts + 1)]
        units += [(path, (k, bounds[k], bounds[k + 1])) for k in range(parts)]
    return units


def _newlines_before(f: BinaryIO, stop: int) -> int:
    f.seek(0)
    n, left = 0, stop
    while left > 0:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            break
        n += chunk.count(b"\n")
        left -= len(chunk)
    return n


def _first_line_at_or_after(f: BinaryIO, start: int) -> int | None:
    """Offset of the first line starting at or after ``start`` (> 0), or None if there is none."""
    f.seek(start - 1)
    pos = start - 1
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            return None
        k = chunk.find(b"\n")
        if k >= 0:
            return pos + k + 1
        pos += len(chunk)


class _Range(io.RawIOBase):
    """The file from its current position up to ``end``, then through the end of the line in progress."""

    def __init__(self, f: BinaryIO, remaining: int):
        self._f, self._left, self._done = f, remaining, remaining <= 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._done:
            return 0
        if self._left > 0:
            data = self._f.read(min(len(b), self._left))
            self._left -= len(data)
            if not data or (self._left == 0 and data.endswith(b"\n")):
                self._done = True
        else:  # past the end: only the rest of the line that began before it
            data = self._f.read(min(len(b), 1 << 16))
            k = data.find(b"\n")
            if not data or k >= 0:
                data, self._done = data[:k + 1] if k >= 0 else data, True
        b[:len(data)] = data
        return len(data)


def open_range(f: BinaryIO, start: int, end: int) -> tuple[BinaryIO, int] | None:
    """(a buffered stream of the range's lines, the number of lines before them), or None if no line
    starts inside ``[start, end)``."""
    begin = 0 if start == 0 else _first_line_at_or_after(f, start)
    if begin is None or begin >= end:
        return None
    before = _newlines_before(f, begin)
    f.seek(begin)
    return io.BufferedReader(_Range(f, end - begin), buffer_size=1 << 20), before
