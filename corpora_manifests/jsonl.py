"""Tolerant JSON-lines reading shared by every reader: a bad line is reported, never fatal."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield ``(line_number, record, problem)`` for every non-blank line.

    Exactly one of ``record`` and ``problem`` is set; ``problem`` starts with a stable reason
    (``invalid_utf8``, ``invalid_json``, ``not_an_object``) followed by ``: detail``, so callers
    can count reasons and keep the detail for the rejects output.
    """
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield n, None, f"invalid_utf8: {e}"[:240]
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                yield n, None, f"invalid_json: {e}"[:240]
                continue
            if not isinstance(rec, dict):
                yield n, None, f"not_an_object: {type(rec).__name__}"
                continue
            yield n, rec, None
