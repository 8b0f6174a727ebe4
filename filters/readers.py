"""Instruction-set readers: every supported format normalised to ``messages`` [{role, content}].

Formats (detected per record unless the caller forces one):

- ``infinity``: Infinity-Instruct — ``conversations`` [{from, value}] plus ``label``
  (``ability_en/zh``, ``cate_ability_en/zh``), ``langdetect``, ``source``, ``id`` (or ``idx``), ``reward``
  (Gen subsets; kept as ``domain.source_reward``);
- ``sharegpt``: ``conversations`` or ``messages`` of {from, value} (human/gpt/system);
- ``openai``: ``messages`` of {role, content} (also LongWriter's format);
- ``alpaca``: ``instruction`` [+ ``input``] → ``output`` (or ``response``), optional
  ``system`` and ``history`` [[q, a], …].

Files: JSONL, JSON (a list, or an object with a ``data`` list) and parquet. A record that cannot be
normalised is yielded as a :class:`Malformed` with a reason; a file that cannot be read at all
yields one :class:`Malformed` for the file. Nothing raises on bad data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

Format = Literal["auto", "infinity", "sharegpt", "openai", "longwriter", "alpaca"]
FORMATS = ("auto", "infinity", "sharegpt", "openai", "longwriter", "alpaca")

_ROLE_MAP = {
    "human": "user", "user": "user", "prompter": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant",
    "bing": "assistant", "model": "assistant", "bot": "assistant",
    "system": "system",
}


@dataclass
class Sample:
    id: str
    messages: list[dict[str, str]]
    source: str
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)  # source-dataset category labels, if any


@dataclass
class Malformed:
    id: str
    reason: str
    detail: str
    path: str
    raw: str | None = None


class RecordError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def detect_format(rec: dict) -> str:
    if isinstance(rec.get("conversations"), list):
        return "infinity" if ("label" in rec or "langdetect" in rec) else "sharegpt"
    msgs = rec.get("messages")
    if isinstance(msgs, list) and msgs:
        first = msgs[0]
        if isinstance(first, dict) and "role" in first:
            return "openai"
        if isinstance(first, dict) and "from" in first:
            return "sharegpt"
    if "instruction" in rec:
        return "alpaca"
    raise RecordError("unknown_format", f"no conversations/messages/instruction field (keys: {sorted(rec)[:8]})")


def _turns(items: Any, role_key: str, content_key: str) -> list[dict[str, str]]:
    if not isinstance(items, list) or not items:
        raise RecordError("empty_conversation", "no turns")
    out = []
    for i, t in enumerate(items):
        if not isinstance(t, dict):
            raise RecordError("bad_turn", f"turn {i} is {type(t).__name__}, not an object")
        role = _ROLE_MAP.get(str(t.get(role_key, "")).strip().lower())
        if role is None:
            raise RecordError("unknown_role", f"turn {i} has role {t.get(role_key)!r}")
        content = t.get(content_key)
        if not isinstance(content, str):
            raise RecordError("bad_turn", f"turn {i} has no string {content_key!r}")
        out.append({"role": role, "content": content})
    return out


def _alpaca(rec: dict) -> list[dict[str, str]]:
    instr = rec.get("instruction")
    if not isinstance(instr, str):
        raise RecordError("bad_turn", "instruction is not a string")
    inp = rec.get("input") or ""
    out = rec.get("output", rec.get("response"))
    if not isinstance(out, str) or not isinstance(inp, str):
        raise RecordError("bad_turn", "output/response or input is not a string")
    msgs = []
    if isinstance(rec.get("system"), str) and rec["system"].strip():
        msgs.append({"role": "system", "content": rec["system"]})
    for pair in rec.get("history") or []:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise RecordError("bad_turn", "history entry is not a [question, answer] pair")
        msgs += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    user = instr if not inp.strip() else f"{instr}\n{inp}"
    return msgs + [{"role": "user", "content": user}, {"role": "assistant", "content": out}]


def _validate(msgs: list[dict[str, str]]) -> list[dict[str, str]]:
    roles = [m["role"] for m in msgs]
    if "user" not in roles:
        raise RecordError("no_user_turn", f"roles {roles}")
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise RecordError("no_assistant_answer", "no non-empty assistant turn (an SFT sample needs an answer)")
    if not any(m["role"] == "user" and m["content"].strip() for m in msgs):
        raise RecordError("empty_user_turn", "every user turn is empty")
    return msgs


def _categories(label: Any) -> list[str]:
    if not isinstance(label, dict):
        return []
    cats: list[str] = []
    for key in ("cate_ability_en", "cate_ability_zh"):
        v = label.get(key)
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list):
            cats += [str(x) for x in v if x]
    return cats


def normalise(rec: Any, fmt: str = "auto", default_id: str = "", default_source: str = "") -> Sample:
    """One raw record → Sample, or RecordError with a reason."""
    if not isinstance(rec, dict):
        raise RecordError("not_an_object", f"record is {type(rec).__name__}")
    kind = detect_format(rec) if fmt == "auto" else ("openai" if fmt == "longwriter" else fmt)
    if kind in ("infinity", "sharegpt"):
        items = rec.get("conversations") if isinstance(rec.get("conversations"), list) else rec.get("messages")
        msgs = _turns(items, "from", "value")
    elif kind == "openai":
        msgs = _turns(rec.get("messages"), "role", "content")
    elif kind == "alpaca":
        msgs = _alpaca(rec)
    else:  # pragma: no cover - guarded by the config Literal
        raise RecordError("unknown_format", f"format {kind!r}")
    msgs = _validate(msgs)
    rid = rec.get("id", rec.get("idx"))
    md: dict[str, Any] = {}
    cats = _categories(rec.get("label")) if kind == "infinity" else []
    if cats:
        md["domain.source_categories"] = cats
    if isinstance(rec.get("langdetect"), str):
        md["lang.source_langdetect"] = rec["langdetect"]
    if kind == "infinity" and isinstance(rec.get("reward"), (int, float)):
        md["domain.source_reward"] = float(rec["reward"])  # Infinity-Instruct Gen: reward-model score
    return Sample(
        id=str(rid) if rid is not None and str(rid) != "" else default_id,
        messages=msgs,
        source=str(rec.get("source") or default_source),
        format=kind,
        metadata=md,
        categories=cats,
    )


def _raw_records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(record number, parsed record or RecordError, raw text) for every record of a file."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        n = 0
        for batch in pf.iter_batches(batch_size=2048):
            for row in batch.to_pylist():
                yield n, row, None
                n += 1
        return
    if name.endswith(".json"):
        raw = path.read_bytes()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            # A .json file may really be JSON Lines: fall through to the line reader.
            if b"\n" in raw.strip():
                yield from _jsonl(path)
                return
            yield 0, RecordError("unreadable_file", f"invalid JSON: {e}"), None
            return
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            data = [data]
        for i, rec in enumerate(data):
            yield i, rec, None
        return
    yield from _jsonl(path)


def _jsonl(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    from corpora_manifests.jsonl import iter_jsonl, split_problem

    for i, rec, problem, raw in iter_jsonl(path, objects_only=False, with_raw=True, start=0):
        if problem is not None:
            reason, detail = split_problem(problem)
            yield i, RecordError(reason, f"line {i + 1}: {detail}"), raw
        else:
            yield i, rec, raw


def read_samples(path: str | Path, fmt: str = "auto", source: str | None = None) -> Iterator[Sample | Malformed]:
    """Every record of one file as a Sample or a Malformed (never raises on bad data)."""
    path = Path(path)
    src = source or path.stem
    try:
        for n, rec, raw in _raw_records(path):
            rid = f"{src}:{n}"
            if isinstance(rec, RecordError):
                yield Malformed(rid, rec.reason, rec.detail, str(path), raw)
                continue
            try:
                yield normalise(rec, fmt, default_id=rid, default_source=src)
            except RecordError as e:
                yid = str(rec.get("id", rid)) if isinstance(rec, dict) else rid
                yield Malformed(yid, e.reason, e.detail, str(path), raw if raw is not None else
                                json.dumps(rec, ensure_ascii=False, default=str)[:500])
    except (OSError, ValueError) as e:  # unreadable file (pyarrow errors are ValueError subclasses/OSError)
        yield Malformed(f"{src}:file", "unreadable_file", f"{type(e).__name__}: {e}", str(path))


def sample_files(paths: list[str | Path]) -> list[Path]:
    """Expand directories and globs into the instruction files they contain (sorted, stable)."""
    out: list[Path] = []
    exts = (".jsonl", ".json", ".parquet", ".jsonl.gz", ".jsonl.zst")
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(exts))
        elif any(ch in str(p) for ch in "*?["):
            out += sorted(Path(x) for x in __import__("glob").glob(str(p), recursive=True))
        else:
            out.append(p)
    return out
