"""Expert-written Q&A (JSONL or CSV), merged with approved generated items as ``origin: expert``.

Accepted fields: ``question`` (or ``instruction``/``问题``), ``answer`` (or ``output``/``答案``),
optional ``task_type`` (``qa``/``report``), ``doc_id``/``source_doc`` (the source document, used to
keep it in one split with generated items from the same document), ``title``. Bad rows are
rejected with a reason; expert items are approved by construction.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterator

from corpora_manifests.errors import UserError
from corpora_manifests.jsonl import iter_jsonl
from corpora_manifests.rejects import RejectsWriter

from .items import QAItem, make_item_id

_Q = ("question", "instruction", "问题", "prompt")
_A = ("answer", "output", "答案", "response")
_DOC = ("doc_id", "source_doc", "document", "文档")


def _first(rec: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if rec.get(k) not in (None, ""):
            return rec[k]
    return None


def _rows(path: Path, fmt: str, rejects: RejectsWriter | None) -> Iterator[tuple[str, dict[str, Any]]]:
    if fmt == "auto":
        fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
    if fmt == "csv":
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            text = path.read_text(encoding="gb18030")
        for n, rec in enumerate(csv.DictReader(io.StringIO(text, newline="")), 2):
            yield f"{path}:{n}", rec
        return
    for n, rec, problem in iter_jsonl(path):
        if problem is None:
            yield f"{path}:{n}", rec
        elif rejects:
            reason = "not_an_object" if problem.startswith("not_an_object") else "bad_json_line"
            rejects.reject(reason, path=f"{path}:{n}", stage="expert", detail=problem)


def read_expert_items(path: str | Path, fmt: str = "auto", rejects: RejectsWriter | None = None) -> list[QAItem]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"expert file not found: {path}")
    items: list[QAItem] = []
    seen: set[str] = set()
    for where, rec in _rows(path, fmt, rejects):
        q, a = _first(rec, _Q), _first(rec, _A)
        if not isinstance(q, str) or not q.strip() or not isinstance(a, str) or not a.strip():
            if rejects:
                rejects.reject("expert_missing_question_or_answer", path=where, stage="expert")
            continue
        task_type = str(rec.get("task_type") or "qa").strip().lower()
        if task_type not in ("qa", "report"):
            if rejects:
                rejects.reject("expert_bad_task_type", path=where, stage="expert", detail=task_type)
            continue
        doc = _first(rec, _DOC)
        item_id = make_item_id("expert", str(doc or ""), task_type, q)
        if item_id in seen:
            if rejects:
                rejects.reject("expert_duplicate", id=item_id, path=where, stage="expert")
            continue
        seen.add(item_id)
        items.append(QAItem(
            item_id=item_id, task_type=task_type, origin="expert", question=q.strip(), answer=a.strip(),
            doc_id=str(doc or item_id), doc_group=f"d:{doc}" if doc else f"e:{item_id}",
            title=str(rec.get("title") or ""), metadata={"synth.expert_file": path.name},
        ))
    return items
