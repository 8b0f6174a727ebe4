"""Persistent request-level cache: a finished (paid) LLM request is never sent again.

Keyed by ``sha256(model, messages, sampling parameters)``. A response is committed to SQLite (WAL,
one transaction per response) the moment it arrives, before anything is done with it, so a run
killed at any point loses at most the requests that were still in flight. What is stored: the
key, the model name, the response text, finish reason and token usage. Never headers, never the
API key.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
  key TEXT PRIMARY KEY,           -- sha256 of (model, messages, params)
  model TEXT NOT NULL,
  content TEXT NOT NULL,
  finish_reason TEXT,
  usage TEXT NOT NULL,            -- JSON {prompt_tokens, completion_tokens, total_tokens}
  attempts INTEGER NOT NULL,
  created_at REAL NOT NULL
);
"""


def request_key(model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    blob = json.dumps({"model": model, "messages": messages, "params": params},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RequestCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (not a power cut) and is much faster than FULL.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT content, finish_reason, usage, attempts FROM responses WHERE key=?", (key,)
        ).fetchone()
        if row is None:
            return None
        return {"content": row[0], "finish_reason": row[1], "usage": json.loads(row[2]), "attempts": row[3]}

    def put(self, key: str, model: str, content: str, finish_reason: str | None, usage: dict[str, int],
            attempts: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?)",
            (key, model, content, finish_reason, json.dumps(usage), attempts, time.time()),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
