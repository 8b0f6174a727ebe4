"""Rejects: every dropped file, record or response is written with a reason, never lost.

``RejectsWriter(dir)`` appends JSON lines ``{"id", "path", "stage", "reason", "detail", ...}`` to
``<dir>/rejects/<name>.jsonl`` and counts reasons; ``counts`` goes into the manifest's stats.
Lines are flushed as written so a killed run keeps what it had rejected.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterator


class RejectsWriter:
    def __init__(self, directory: str | Path, name: str = "rejects", subdir: str = "rejects"):
        self.path = Path(directory) / subdir / f"{name}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8")
        self.counts: Counter[str] = Counter()

    def reject(self, reason: str, *, id: str | None = None, path: str | None = None, stage: str | None = None,
               detail: str | None = None, **extra: Any) -> None:
        rec = {"id": id, "path": path, "stage": stage, "reason": reason, "detail": detail, **extra}
        self._f.write(json.dumps({k: v for k, v in rec.items() if v is not None}, ensure_ascii=False, default=str) + "\n")
        self._f.flush()
        self.counts[reason] += 1

    def close(self) -> dict[str, int]:
        if not self._f.closed:
            self._f.close()
        return dict(self.counts)

    def __enter__(self) -> "RejectsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def iter_rejects(path: str | Path) -> Iterator[dict[str, Any]]:
    """Reject records one at a time (summaries of millions of rejects stay in bounded memory)."""
    p = Path(path)
    files = sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
    from .jsonl import records

    for f in files:
        yield from records(f)


def read_rejects(path: str | Path) -> list[dict[str, Any]]:
    """All reject records in memory: for tests and small runs; summaries use ``iter_rejects``."""
    return list(iter_rejects(path))
