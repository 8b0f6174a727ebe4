"""The one tolerant JSON-lines reader of the toolkit: a bad line is reported, never fatal.

``iter_jsonl(path)`` reads a local file (``.gz``/``.zst``/``.bz2``/``.xz`` decompressed by fsspec);
``iter_jsonl_lines(lines)`` parses lines someone else opened (a datatrove ``DataFolder`` file, bytes
in memory). Every reader of JSONL in the packages goes through these two, so reasons are the same
everywhere: ``invalid_utf8``, ``invalid_json``, ``not_an_object``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

REASONS = ("invalid_utf8", "invalid_json", "not_an_object")
PREVIEW = 500  # characters of a bad line kept for the rejects output


def iter_jsonl_lines(lines: Iterable[bytes | str], *, objects_only: bool = True, with_raw: bool = False,
                     start: int = 1) -> Iterator[tuple]:
    """Yield ``(line_number, record, problem)`` — or ``(…, raw)`` with ``with_raw`` — per non-blank line.

    Exactly one of ``record`` and ``problem`` is set; ``problem`` starts with a stable reason (see
    ``REASONS``) followed by ``: detail``, so callers can count reasons and keep the detail for the
    rejects output. ``raw`` is the line's text (at most ``PREVIEW`` characters). With
    ``objects_only=False`` any JSON value is a record (callers that check the shape themselves).
    """
    for n, line in enumerate(lines, start):
        if not line.strip():
            continue
        if isinstance(line, bytes):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                out = (n, None, f"invalid_utf8: {e}"[:240])
                yield (*out, line[:PREVIEW].decode("utf-8", "replace")) if with_raw else out
                continue
        else:
            text = line
        try:
            rec: Any = json.loads(text)
        except json.JSONDecodeError as e:
            out = (n, None, f"invalid_json: {e}"[:240])
        else:
            if objects_only and not isinstance(rec, dict):
                out = (n, None, f"not_an_object: {type(rec).__name__}")
            else:
                out = (n, rec, None)
        yield (*out, text[:PREVIEW]) if with_raw else out


def iter_jsonl(path: str | Path, *, objects_only: bool = True, with_raw: bool = False,
               start: int = 1) -> Iterator[tuple]:
    """``iter_jsonl_lines`` over a file; compressed files (by extension) are decompressed."""
    import fsspec

    with fsspec.open(str(path), "rb", compression="infer") as f:
        yield from iter_jsonl_lines(f, objects_only=objects_only, with_raw=with_raw, start=start)


def split_problem(problem: str) -> tuple[str, str]:
    """``"invalid_json: Expecting value…"`` -> ``("invalid_json", "Expecting value…")``."""
    reason, _, detail = problem.partition(": ")
    return reason, detail


def records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Just the good records of a file (for data we wrote ourselves, or counting): bad lines skipped."""
    for _, rec, _ in iter_jsonl(path):
        if rec is not None:
            yield rec
