"""The review store: one SQLite file shared by the pipeline, the review import/export round trip
and the built-in review app.

Schema (``SCHEMA_VERSION`` 1; see docs/synthesis.md):

* ``items``      one row per generated or rule-made Q&A item; ``status`` is derived from the
                 decisions (``pending | approved | rejected | conflict``) and kept up to date by
                 ``record_decision``;
* ``decisions``  append-only history: who decided what, when, through which channel, with the
                 edited answer; ``fingerprint`` (item, annotator, decision, answer) is unique, so a
                 re-import of the same file records nothing new;
* ``splits``     the split each document group was assigned to (stable across rebuilds);
* ``meta``       key/value (schema version).

Status rules: each annotator's latest decision counts (an annotator may revise their own);
annotators who disagree (accept vs reject, or different edited answers) make a ``conflict``,
reported and never silently overwritten; a decision recorded with ``resolve=True`` (an
adjudicator) settles a conflict. Only ``approved`` items flow into the shards, with the edited
answer when there is one. SQLite in WAL mode: many readers (the review app) beside one writer.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .items import QAItem

SCHEMA_VERSION = 1
STATUSES = ("pending", "approved", "rejected", "conflict")
DECISIONS = ("accept", "reject")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  item_id    TEXT PRIMARY KEY,
  task_type  TEXT NOT NULL CHECK (task_type IN ('qa', 'report')),
  origin     TEXT NOT NULL CHECK (origin IN ('synthetic', 'rules', 'expert')),
  question   TEXT NOT NULL,
  answer     TEXT NOT NULL,
  doc_id     TEXT NOT NULL,
  doc_group  TEXT NOT NULL,
  chunk_id   TEXT NOT NULL DEFAULT '',
  title      TEXT NOT NULL DEFAULT '',
  context    TEXT NOT NULL DEFAULT '',
  metadata   TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  status     TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'conflict')),
  final_answer TEXT
);
CREATE INDEX IF NOT EXISTS items_status ON items (status);
CREATE INDEX IF NOT EXISTS items_group ON items (doc_group);
CREATE TABLE IF NOT EXISTS decisions (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  item_id       TEXT NOT NULL REFERENCES items (item_id),
  decision      TEXT NOT NULL CHECK (decision IN ('accept', 'reject')),
  edited_answer TEXT,
  annotator     TEXT NOT NULL,
  decided_at    TEXT NOT NULL,
  channel       TEXT NOT NULL,
  comment       TEXT,
  resolves_conflict INTEGER NOT NULL DEFAULT 0,
  fingerprint   TEXT NOT NULL UNIQUE,
  imported_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_item ON decisions (item_id);
CREATE TABLE IF NOT EXISTS splits (
  doc_group TEXT NOT NULL,
  seed      INTEGER NOT NULL,
  split     TEXT NOT NULL,
  stratum   TEXT NOT NULL,
  assigned_at TEXT NOT NULL,
  PRIMARY KEY (doc_group, seed)
);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class DecisionOutcome:
    item_id: str
    result: str  # "recorded" | "duplicate" | "unknown_item" | "invalid"
    status: str | None = None  # the item's status afterwards
    conflict: bool = False
    detail: str = ""


@dataclass
class Decision:
    item_id: str
    decision: str
    annotator: str
    decided_at: str
    channel: str
    edited_answer: str | None = None
    comment: str | None = None
    resolves_conflict: bool = False


@dataclass
class StoredItem:
    item: QAItem
    status: str
    final_answer: str | None
    created_at: str
    decisions: list[Decision] = field(default_factory=list)


class ReviewStore:
    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA foreign_keys=ON")
        if not readonly:
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ReviewStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- items ---------------------------------------------------------------------------------
    def add_items(self, items: Iterable[QAItem]) -> int:
        """Insert new items (existing ids are left untouched); return how many were new."""
        now = _now()
        rows = [(i.item_id, i.task_type, i.origin, i.question, i.answer, i.doc_id, i.doc_group, i.chunk_id,
                 i.title, i.context, json.dumps(i.metadata, ensure_ascii=False, sort_keys=True), now)
                for i in items]
        before = self._count()
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO items (item_id, task_type, origin, question, answer, doc_id, doc_group,"
                " chunk_id, title, context, metadata, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        return self._count() - before

    def _count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    def get(self, item_id: str, with_decisions: bool = True) -> StoredItem | None:
        row = self._db.execute(f"SELECT {_ITEM_COLS} FROM items WHERE item_id=?", (item_id,)).fetchone()
        if row is None:
            return None
        s = _stored(row)
        if with_decisions:
            s.decisions = self.decisions_for(item_id)
        return s

    def list_items(self, status: str | None = None, origin: str | None = None, limit: int | None = None,
                   offset: int = 0) -> list[StoredItem]:
        where, args = [], []
        if status:
            where.append("status=?")
            args.append(status)
        if origin:
            where.append("origin=?")
            args.append(origin)
        sql = f"SELECT {_ITEM_COLS} FROM items"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY doc_group, chunk_id, item_id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return [_stored(r) for r in self._db.execute(sql, args)]

    def list_pending(self, limit: int | None = None, offset: int = 0) -> list[StoredItem]:
        return self.list_items(status="pending", limit=limit, offset=offset)

    def iter_approved(self) -> Iterator[StoredItem]:
        for r in self._db.execute(f"SELECT {_ITEM_COLS} FROM items WHERE status='approved' ORDER BY item_id"):
            yield _stored(r)

    def status_counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"):
            counts[status] = n
        counts["total"] = sum(counts[s] for s in STATUSES)
        counts["edited"] = self._db.execute(
            "SELECT COUNT(*) FROM items WHERE status='approved' AND final_answer IS NOT NULL AND final_answer != answer"
        ).fetchone()[0]
        return counts

    def counts_by(self, column: str) -> dict[str, dict[str, int]]:
        if column not in ("origin", "task_type"):
            raise ValueError(column)
        out: dict[str, dict[str, int]] = {}
        for key, status, n in self._db.execute(f"SELECT {column}, status, COUNT(*) FROM items GROUP BY 1, 2"):
            out.setdefault(key, {})[status] = n
        return out

    # ---- decisions -----------------------------------------------------------------------------
    def decisions_for(self, item_id: str) -> list[Decision]:
        rows = self._db.execute(
            "SELECT item_id, decision, annotator, decided_at, channel, edited_answer, comment, resolves_conflict"
            " FROM decisions WHERE item_id=? ORDER BY decided_at, id", (item_id,)).fetchall()
        return [Decision(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7])) for r in rows]

    def record_decision(self, item_id: str, decision: str, annotator: str, *, edited_answer: str | None = None,
                        decided_at: str | None = None, channel: str = "app", comment: str | None = None,
                        resolve: bool = False) -> DecisionOutcome:
        """Record one reviewer decision; idempotent; returns the item's status afterwards.

        ``decision`` is ``accept`` or ``reject``; an ``edited_answer`` equal to the generated one
        counts as no edit. ``resolve=True`` marks an adjudication that settles a conflict.
        """
        if decision not in DECISIONS:
            return DecisionOutcome(item_id, "invalid", detail=f"decision must be one of {DECISIONS}, got {decision!r}")
        if not annotator:
            return DecisionOutcome(item_id, "invalid", detail="annotator is required")
        with self._tx():
            row = self._db.execute("SELECT answer, status FROM items WHERE item_id=?", (item_id,)).fetchone()
            if row is None:
                return DecisionOutcome(item_id, "unknown_item")
            answer, old_status = row
            if edited_answer is not None and (not edited_answer.strip() or edited_answer.strip() == answer.strip()):
                edited_answer = None
            if decision == "reject":
                edited_answer = None
            fp = hashlib.sha256("\x00".join(
                [item_id, annotator, decision, edited_answer or "", "R" if resolve else ""]).encode()).hexdigest()
            cur = self._db.execute(
                "INSERT OR IGNORE INTO decisions (item_id, decision, edited_answer, annotator, decided_at, channel,"
                " comment, resolves_conflict, fingerprint, imported_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (item_id, decision, edited_answer, annotator, decided_at or _now(), channel, comment, int(resolve),
                 fp, _now()))
            if cur.rowcount == 0:
                return DecisionOutcome(item_id, "duplicate", old_status, old_status == "conflict")
            status, final = self._derive(item_id, answer)
            self._db.execute("UPDATE items SET status=?, final_answer=? WHERE item_id=?", (status, final, item_id))
        return DecisionOutcome(item_id, "recorded", status, status == "conflict")

    def _derive(self, item_id: str, answer: str) -> tuple[str, str | None]:
        decisions = self.decisions_for(item_id)
        resolutions = [d for d in decisions if d.resolves_conflict]
        if resolutions:
            effective = [resolutions[-1]]
        else:
            latest: dict[str, Decision] = {}
            for d in decisions:  # ordered by time: each annotator's latest decision counts
                latest[d.annotator] = d
            effective = list(latest.values())
        if not effective:
            return "pending", None
        verdicts = {(d.decision, d.edited_answer if d.decision == "accept" else None) for d in effective}
        if len(verdicts) > 1:
            return "conflict", None
        decision, edited = verdicts.pop()
        if decision == "reject":
            return "rejected", None
        return "approved", edited or answer

    def conflicts(self) -> list[StoredItem]:
        items = self.list_items(status="conflict")
        for s in items:
            s.decisions = self.decisions_for(s.item.item_id)
        return items

    def approvals_fingerprint(self) -> str:
        """Changes whenever the set of approved items or their final answers changes."""
        h = hashlib.sha256()
        for item_id, final in self._db.execute(
                "SELECT item_id, final_answer FROM items WHERE status='approved' ORDER BY item_id"):
            h.update(f"{item_id}\x00{final}\x01".encode("utf-8"))
        return h.hexdigest()

    # ---- split assignments ---------------------------------------------------------------------
    def split_assignments(self, seed: int) -> dict[str, tuple[str, str]]:
        return {g: (s, st) for g, s, st in self._db.execute(
            "SELECT doc_group, split, stratum FROM splits WHERE seed=?", (seed,))}

    def save_split_assignments(self, seed: int, assignments: dict[str, tuple[str, str]]) -> None:
        now = _now()
        with self._tx():
            self._db.executemany("INSERT OR IGNORE INTO splits VALUES (?,?,?,?,?)",
                                 [(g, seed, s, st, now) for g, (s, st) in assignments.items()])

    # ---- plumbing ------------------------------------------------------------------------------
    def batch(self):
        """``with store.batch():`` groups many writes into one transaction (much faster)."""
        return _Tx(self._db)

    def _tx(self):
        return _Tx(self._db)


class _Tx:
    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.nested = db.in_transaction

    def __enter__(self):
        if not self.nested:
            self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        if self.nested:
            return False
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False


_ITEM_COLS = ("item_id, task_type, origin, question, answer, doc_id, doc_group, chunk_id, title, context, metadata,"
              " status, final_answer, created_at")


def _stored(r: Any) -> StoredItem:
    item = QAItem(item_id=r[0], task_type=r[1], origin=r[2], question=r[3], answer=r[4], doc_id=r[5],
                  doc_group=r[6], chunk_id=r[7], title=r[8], context=r[9], metadata=json.loads(r[10]))
    return StoredItem(item=item, status=r[11], final_answer=r[12], created_at=r[13])
