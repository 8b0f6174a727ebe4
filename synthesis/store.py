"""The review store: one SQLite file shared by the pipeline, the review import/export round trip
and the built-in review app.

Schema (``SCHEMA_VERSION`` 2; see docs/synthesis.md):

* ``items``      one row per generated or rule-made Q&A item; ``status`` is derived from the
                 decisions (``pending | approved | rejected | conflict``) and kept up to date by
                 ``record_decision``; ``version`` grows with every decision on the item (optimistic
                 concurrency: a save made against an older version is refused as stale);
* ``decisions``  append-only events: who decided what, when (the annotation's own time), through
                 which channel, with the annotation's own id (``source_id``: Label Studio's
                 annotation id) and the edited answer. ``fingerprint`` (item, annotator, decision,
                 answer, adjudication, annotation id, annotation time) is unique, so re-importing a
                 file records nothing new, while a revised annotation (new ``updated_at``) is a new
                 event even when it returns to an earlier decision;
* ``audit``      one row per recorded decision and per refused stale save: actor, time, channel,
                 the item's state before and after (status, final answer, version);
* ``exports``    which version of an item was last exported to which target (export selects items
                 not yet exported or changed since);
* ``users``      review-app annotators: name, role (annotator | lead), sha256 of their token;
* ``splits``     the split each document group was assigned to (stable across rebuilds);
* ``meta``       key/value (schema version, the review app's session secret).

Status rules: each annotator's latest decision (by annotation time) counts — an annotator may
revise their own; annotators who disagree (accept vs reject, or different edited answers) make a
``conflict``, reported and never silently overwritten; a decision recorded with ``resolve=True``
(a lead) settles it, and only decisions made after that settlement can reopen it. Only
``approved`` items flow into the shards, with the edited answer when there is one. SQLite in WAL
mode: many readers (the review app) beside one writer; every write is one short transaction.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .items import QAItem

SCHEMA_VERSION = 2
ROLES = ("annotator", "lead")
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
  final_answer TEXT,
  version    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_status ON items (status);
CREATE INDEX IF NOT EXISTS items_group ON items (doc_group);
CREATE INDEX IF NOT EXISTS items_status_group ON items (status, doc_group);  -- a page of one status, in order
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
  imported_at   TEXT NOT NULL,
  source_id     TEXT,
  decided_ts    REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS decisions_item ON decisions (item_id);
CREATE INDEX IF NOT EXISTS decisions_annotator ON decisions (annotator);
CREATE TABLE IF NOT EXISTS audit (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  item_id     TEXT NOT NULL,
  action      TEXT NOT NULL,          -- decision | resolve | stale_save
  actor       TEXT NOT NULL,
  at          TEXT NOT NULL,
  channel     TEXT NOT NULL,
  decision_id INTEGER,
  before      TEXT NOT NULL,          -- JSON {status, final_answer, version}
  after       TEXT NOT NULL,          -- JSON: the state after, or the refused save
  detail      TEXT
);
CREATE INDEX IF NOT EXISTS audit_item ON audit (item_id);
CREATE TABLE IF NOT EXISTS exports (
  item_id     TEXT NOT NULL,
  target      TEXT NOT NULL,
  version     INTEGER NOT NULL,
  exported_at TEXT NOT NULL,
  PRIMARY KEY (item_id, target)
);
CREATE TABLE IF NOT EXISTS users (
  name         TEXT PRIMARY KEY,
  role         TEXT NOT NULL CHECK (role IN ('annotator', 'lead')),
  token_sha256 TEXT NOT NULL UNIQUE,
  created_at   TEXT NOT NULL
);
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
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def parse_time(value: str | None) -> float | None:
    """Seconds since the epoch of an ISO-8601 time (``Z``, offsets, naive = UTC); None if unreadable."""
    if not value:
        return None
    v = str(value).strip()
    if v.endswith(("Z", "z")):
        v = v[:-1] + "+00:00"
    try:
        t = _dt.datetime.fromisoformat(v)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.timestamp()


@dataclass
class DecisionOutcome:
    item_id: str
    result: str  # "recorded" | "duplicate" | "unknown_item" | "invalid" | "stale"
    status: str | None = None  # the item's status afterwards
    conflict: bool = False
    detail: str = ""
    version: int | None = None  # the item's version afterwards (or now, for a stale save)


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
    source_id: str | None = None
    id: int | None = None


@dataclass
class StoredItem:
    item: QAItem
    status: str
    final_answer: str | None
    created_at: str
    decisions: list[Decision] = field(default_factory=list)
    version: int = 0


@dataclass
class User:
    name: str
    role: str
    created_at: str


def _has_column(path: Path, table: str, column: str) -> bool:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cols = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        return not cols or column in cols  # no table yet: nothing to migrate
    finally:
        db.close()


_MIGRATIONS = (  # (table, column, definition): columns added after schema version 1
    ("items", "version", "INTEGER NOT NULL DEFAULT 0"),
    ("decisions", "source_id", "TEXT"),
    ("decisions", "decided_ts", "REAL NOT NULL DEFAULT 0"),
)


class ReviewStore:
    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            if self.path.exists() and not _has_column(self.path, "items", "version"):
                ReviewStore(self.path).close()  # a version-1 store: migrate it once, then read
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
            self._migrate()
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    def _migrate(self) -> None:
        """A version-1 store gains the new columns (existing decisions keep their order by time)."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "items" not in tables:
            return
        with self._tx():
            for table, col, definition in _MIGRATIONS:
                cols = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
                if col not in cols:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {definition}")
            for did, at in self._db.execute("SELECT id, decided_at FROM decisions WHERE decided_ts=0").fetchall():
                self._db.execute("UPDATE decisions SET decided_ts=? WHERE id=?", (parse_time(at) or 0.0, did))

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

    @staticmethod
    def _filters(status, origin, doc_group, annotator) -> tuple[str, list[Any]]:
        where, args = [], []
        for col, val in (("status", status), ("origin", origin), ("doc_group", doc_group)):
            if val:
                where.append(f"{col}=?")
                args.append(val)
        if annotator:
            where.append("item_id IN (SELECT item_id FROM decisions WHERE annotator=?)")
            args.append(annotator)
        return (" WHERE " + " AND ".join(where)) if where else "", args

    def count_items(self, status: str | None = None, origin: str | None = None, doc_group: str | None = None,
                    annotator: str | None = None) -> int:
        where, args = self._filters(status, origin, doc_group, annotator)
        return self._db.execute("SELECT COUNT(*) FROM items" + where, args).fetchone()[0]

    def list_items(self, status: str | None = None, origin: str | None = None, limit: int | None = None,
                   offset: int = 0, doc_group: str | None = None, annotator: str | None = None) -> list[StoredItem]:
        where, args = self._filters(status, origin, doc_group, annotator)
        sql = f"SELECT {_ITEM_COLS} FROM items" + where
        sql += " ORDER BY doc_group, rowid"  # a document's items in generation order (its articles in order)
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return [_stored(r) for r in self._db.execute(sql, args)]

    def list_summaries(self, status: str | None = None, limit: int = 100, offset: int = 0,
                       doc_group: str | None = None, annotator: str | None = None) -> list[dict[str, Any]]:
        """A page of the review list: only what a list row shows (no passage, no metadata)."""
        where, args = self._filters(status, None, doc_group, annotator)
        rows = self._db.execute(
            "SELECT item_id, status, title, substr(question, 1, 80), task_type, version FROM items" + where +
            " ORDER BY doc_group, rowid LIMIT ? OFFSET ?", [*args, limit, offset])
        return [{"item_id": r[0], "status": r[1], "title": r[2], "question": r[3], "task_type": r[4], "version": r[5]}
                for r in rows]

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
        if column not in ("origin", "task_type", "doc_group"):
            raise ValueError(column)
        out: dict[str, dict[str, int]] = {}
        for key, status, n in self._db.execute(f"SELECT {column}, status, COUNT(*) FROM items GROUP BY 1, 2"):
            out.setdefault(key, {})[status] = n
        return out

    def documents(self) -> list[dict[str, Any]]:
        """One row per document group: its title and item count (the review app's filter)."""
        return [{"doc_group": g, "title": t, "items": n} for g, t, n in self._db.execute(
            "SELECT doc_group, MIN(title), COUNT(*) FROM items GROUP BY doc_group ORDER BY MIN(title), doc_group")]

    def annotators(self) -> list[dict[str, Any]]:
        return [{"annotator": a, "decisions": n, "items": m} for a, n, m in self._db.execute(
            "SELECT annotator, COUNT(*), COUNT(DISTINCT item_id) FROM decisions GROUP BY annotator ORDER BY annotator")]

    # ---- decisions -----------------------------------------------------------------------------
    def decisions_for(self, item_id: str) -> list[Decision]:
        rows = self._db.execute(
            "SELECT item_id, decision, annotator, decided_at, channel, edited_answer, comment, resolves_conflict,"
            " source_id, id FROM decisions WHERE item_id=? ORDER BY decided_ts, id", (item_id,)).fetchall()
        return [Decision(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9]) for r in rows]

    def record_decision(self, item_id: str, decision: str, annotator: str, *, edited_answer: str | None = None,
                        decided_at: str | None = None, channel: str = "app", comment: str | None = None,
                        resolve: bool = False, source_id: str | None = None,
                        expected_version: int | None = None) -> DecisionOutcome:
        """Record one decision event; idempotent; returns the item's status afterwards.

        ``decision`` is ``accept`` or ``reject``; an ``edited_answer`` equal to the generated one
        counts as no edit. ``resolve=True`` marks a lead's settlement. ``decided_at`` is the
        annotation's own time and ``source_id`` its own id (both part of the event's identity, so
        a revised annotation is a new event and a re-imported one is not); without ``decided_at``
        the event is timed now. ``expected_version`` (the review app): if the item changed since
        the annotator opened it, nothing is decided — the outcome is ``stale`` (the refused save
        is kept in the audit) and the caller shows both versions.
        """
        if decision not in DECISIONS:
            return DecisionOutcome(item_id, "invalid", detail=f"decision must be one of {DECISIONS}, got {decision!r}")
        if not annotator:
            return DecisionOutcome(item_id, "invalid", detail="annotator is required")
        ts = parse_time(decided_at)
        if decided_at and ts is None:
            return DecisionOutcome(item_id, "invalid", detail=f"unreadable decision time {decided_at!r}")
        with self._tx():
            row = self._db.execute("SELECT answer, status, final_answer, version FROM items WHERE item_id=?",
                                   (item_id,)).fetchone()
            if row is None:
                return DecisionOutcome(item_id, "unknown_item")
            answer, old_status, old_final, version = row
            before = {"status": old_status, "final_answer": old_final, "version": version}
            if edited_answer is not None and (not edited_answer.strip() or edited_answer.strip() == answer.strip()):
                edited_answer = None
            if decision == "reject":
                edited_answer = None
            now = _now()
            if expected_version is not None and expected_version != version:
                self._db.execute(
                    "INSERT INTO audit (item_id, action, actor, at, channel, before, after, detail)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (item_id, "stale_save", annotator, now, channel, json.dumps(before, ensure_ascii=False),
                     json.dumps({"decision": decision, "edited_answer": edited_answer, "comment": comment,
                                 "resolve": resolve, "expected_version": expected_version}, ensure_ascii=False),
                     "refused: the item changed since it was opened"))
                return DecisionOutcome(item_id, "stale", old_status, old_status == "conflict",
                                       detail=f"item is at version {version}, the save was made on {expected_version}",
                                       version=version)
            if source_id:  # a revision of a known annotation keeps its annotator's name (user maps may differ)
                known = self._db.execute("SELECT annotator FROM decisions WHERE item_id=? AND source_id=? LIMIT 1",
                                         (item_id, source_id)).fetchone()
                annotator = known[0] if known else annotator
            when = repr(ts) if ts is not None else ""
            if ts is None and source_id is None:
                # An untimed row (a CSV without decided_at): a new event only if it differs from this
                # annotator's latest decision, so re-importing a file records nothing while a changed
                # mind is kept. With times (Label Studio, the app, a decided_at column) order is exact.
                last = self._db.execute(
                    "SELECT decision, edited_answer FROM decisions WHERE item_id=? AND annotator=?"
                    " AND resolves_conflict=? ORDER BY decided_ts DESC, id DESC LIMIT 1",
                    (item_id, annotator, int(resolve))).fetchone()
                if last is not None and tuple(last) == (decision, edited_answer):
                    return DecisionOutcome(item_id, "duplicate", old_status, old_status == "conflict", version=version)
                if last is not None:
                    when = now
            # An annotation with its own id is identified by it (not by the annotator's display name,
            # which a user map may change between imports).
            who = "" if source_id else annotator
            fp = hashlib.sha256("\x00".join(
                [item_id, who, decision, edited_answer or "", "R" if resolve else "", source_id or "",
                 when]).encode()).hexdigest()
            at = decided_at or now
            cur = self._db.execute(
                "INSERT OR IGNORE INTO decisions (item_id, decision, edited_answer, annotator, decided_at, channel,"
                " comment, resolves_conflict, fingerprint, imported_at, source_id, decided_ts)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (item_id, decision, edited_answer, annotator, at, channel, comment, int(resolve), fp, now,
                 source_id, ts if ts is not None else parse_time(now)))
            if cur.rowcount == 0:
                return DecisionOutcome(item_id, "duplicate", old_status, old_status == "conflict", version=version)
            status, final = self._derive(item_id, answer)
            version += 1
            self._db.execute("UPDATE items SET status=?, final_answer=?, version=? WHERE item_id=?",
                             (status, final, version, item_id))
            after = {"status": status, "final_answer": final, "version": version}
            self._db.execute(
                "INSERT INTO audit (item_id, action, actor, at, channel, decision_id, before, after, detail)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (item_id, "resolve" if resolve else "decision", annotator, now, channel, cur.lastrowid,
                 json.dumps(before, ensure_ascii=False), json.dumps(after, ensure_ascii=False),
                 f"{decision}{' (edited)' if edited_answer else ''}{': ' + comment if comment else ''}"))
        return DecisionOutcome(item_id, "recorded", status, status == "conflict", version=version)

    def _derive(self, item_id: str, answer: str) -> tuple[str, str | None]:
        decisions = self.decisions_for(item_id)  # ordered by annotation time, then arrival
        last_resolution = max((n for n, d in enumerate(decisions) if d.resolves_conflict), default=None)
        latest: dict[str, Decision] = {}
        effective: list[Decision] = []
        if last_resolution is not None:
            effective.append(decisions[last_resolution])
            later = decisions[last_resolution + 1:]  # only what was decided after the settlement counts
        else:
            later = decisions
        for d in later:
            if not d.resolves_conflict:
                latest[d.annotator] = d  # each annotator's latest decision counts
        effective += list(latest.values())
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

    def effective_decisions(self, item_id: str) -> list[Decision]:
        """The decisions that make the item's status now (what a lead compares in a conflict)."""
        decisions = self.decisions_for(item_id)
        last_resolution = max((n for n, d in enumerate(decisions) if d.resolves_conflict), default=None)
        out: list[Decision] = [decisions[last_resolution]] if last_resolution is not None else []
        latest: dict[str, Decision] = {}
        for d in decisions[(last_resolution + 1) if last_resolution is not None else 0:]:
            if not d.resolves_conflict:
                latest[d.annotator] = d
        return out + list(latest.values())

    def audit_for(self, item_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT id, action, actor, at, channel, decision_id, before, after, detail FROM audit"
            " WHERE item_id=? ORDER BY id", (item_id,)).fetchall()
        return [{"id": r[0], "action": r[1], "actor": r[2], "at": r[3], "channel": r[4], "decision_id": r[5],
                 "before": json.loads(r[6]), "after": json.loads(r[7]), "detail": r[8]} for r in rows]

    def approvals_fingerprint(self) -> str:
        """Changes whenever the set of approved items or their final answers changes."""
        h = hashlib.sha256()
        for item_id, final in self._db.execute(
                "SELECT item_id, final_answer FROM items WHERE status='approved' ORDER BY item_id"):
            h.update(f"{item_id}\x00{final}\x01".encode("utf-8"))
        return h.hexdigest()

    # ---- exports -------------------------------------------------------------------------------
    def select_for_export(self, statuses: Iterable[str], target: str, everything: bool = False,
                          limit: int | None = None) -> list[StoredItem]:
        """Items in ``statuses`` not yet exported to ``target``, or changed since (``everything``: all)."""
        statuses = list(statuses)
        sql = (f"SELECT {_ITEM_COLS_I} FROM items i LEFT JOIN exports e ON e.item_id=i.item_id AND e.target=?"
               f" WHERE i.status IN ({','.join('?' * len(statuses))})")
        if not everything:
            sql += " AND (e.version IS NULL OR e.version != i.version)"
        sql += " ORDER BY i.doc_group, i.rowid"
        args: list[Any] = [target, *statuses]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_stored(r) for r in self._db.execute(sql, args)]

    def mark_exported(self, items: Iterable[StoredItem], target: str) -> None:
        now = _now()
        with self._tx():
            self._db.executemany("INSERT OR REPLACE INTO exports VALUES (?,?,?,?)",
                                 [(s.item.item_id, target, s.version, now) for s in items])

    # ---- review-app users ----------------------------------------------------------------------
    def add_user(self, name: str, role: str = "annotator") -> str:
        """Create (or re-key) an annotator; return their new token (only its sha256 is stored)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        if not name.strip():
            raise ValueError("a user needs a name")
        token = secrets.token_urlsafe(24)
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._tx():
            self._db.execute("INSERT INTO users VALUES (?,?,?,?) ON CONFLICT(name) DO UPDATE SET role=excluded.role,"
                             " token_sha256=excluded.token_sha256", (name.strip(), role, digest, _now()))
        return token

    def user_for_token(self, token: str) -> User | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        row = self._db.execute("SELECT name, role, created_at FROM users WHERE token_sha256=?", (digest,)).fetchone()
        return User(*row) if row else None

    def users(self) -> list[User]:
        return [User(*r) for r in self._db.execute("SELECT name, role, created_at FROM users ORDER BY name")]

    def secret(self) -> bytes:
        """The review app's session-signing secret: made once, kept in the store (sessions survive restarts)."""
        row = self._db.execute("SELECT value FROM meta WHERE key='app_secret'").fetchone()
        if row is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('app_secret', ?)", (secrets.token_hex(32),))
            row = self._db.execute("SELECT value FROM meta WHERE key='app_secret'").fetchone()
        return bytes.fromhex(row[0])

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


_COLS = ("item_id", "task_type", "origin", "question", "answer", "doc_id", "doc_group", "chunk_id", "title",
         "context", "metadata", "status", "final_answer", "created_at", "version")
_ITEM_COLS = ", ".join(_COLS)
_ITEM_COLS_I = ", ".join("i." + c for c in _COLS)


def _stored(r: Any) -> StoredItem:
    item = QAItem(item_id=r[0], task_type=r[1], origin=r[2], question=r[3], answer=r[4], doc_id=r[5],
                  doc_group=r[6], chunk_id=r[7], title=r[8], context=r[9], metadata=json.loads(r[10]))
    return StoredItem(item=item, status=r[11], final_answer=r[12], created_at=r[13], version=r[14])
