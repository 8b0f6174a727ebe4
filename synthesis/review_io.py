"""The review round trip: export pending items, import decisions (JSONL, CSV, Label Studio).

Exports
  * JSONL — one object per item with empty ``decision``/``edited_answer``/``annotator`` fields;
  * CSV   — the same columns, UTF-8 *with BOM* so Excel opens Chinese text correctly;
  * Label Studio — ``tasks.json`` (``data`` + ``predictions``: the generated answer pre-filled in
    an editable TextArea and ``accept`` pre-selected) and ``labeling_config.xml`` (a Choices
    accept/reject control and the editable answer).
Imports
  * the JSONL/CSV files above after review (``decision`` accept/reject, optional edited answer);
  * Label Studio's JSON export (tasks with ``annotations[].result`` of ``choices`` and ``textarea``
    regions, ``completed_by``, ``updated_at``, ``was_cancelled``) and its JSON-MIN export.
Items are matched by ``item_id`` (in ``data.item_id`` for Label Studio). Rows with no decision
are skipped (not reviewed yet); unknown ids and unreadable rows are counted and reported.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from corpora_manifests.jsonl import iter_jsonl
from corpora_manifests.errors import UserError
from corpora_manifests.models import atomic_write_text

from .store import ReviewStore, StoredItem

EXPORT_COLUMNS = ["item_id", "task_type", "origin", "title", "question", "answer", "context", "grounding",
                  "decision", "edited_answer", "annotator", "decided_at", "comment"]
_ACCEPT = {"accept", "accepted", "approve", "approved", "yes", "y", "1", "true", "ok", "通过", "接受", "是", "同意"}
_REJECT = {"reject", "rejected", "no", "n", "0", "false", "驳回", "拒绝", "否", "不通过"}

LABEL_STUDIO_CONFIG = """<View>
  <Style>.htx-text { white-space: pre-wrap; }</Style>
  <Header value="$title"/>
  <View style="max-height: 300px; overflow-y: auto; border: 1px solid #ddd; padding: 6px">
    <Text name="context" value="$context" granularity="paragraph"/>
  </View>
  <Header value="问题 / Question"/>
  <Text name="question" value="$question"/>
  <Header value="审核 / Decision"/>
  <Choices name="decision" toName="question" choice="single-radio" showInline="true" required="true">
    <Choice value="accept" hint="答案正确、有依据（可先修改答案再接受）"/>
    <Choice value="reject" hint="问题无意义、答案错误或无依据"/>
  </Choices>
  <Header value="答案（可编辑） / Answer (editable)"/>
  <TextArea name="answer" toName="question" editable="true" rows="8" maxSubmissions="1"/>
</View>
"""


def _row_for(s: StoredItem) -> dict[str, Any]:
    i = s.item
    return {"item_id": i.item_id, "task_type": i.task_type, "origin": i.origin, "title": i.title,
            "question": i.question, "answer": i.answer, "context": i.context,
            "grounding": i.metadata.get("quality.grounding"), "decision": "", "edited_answer": "",
            "annotator": "", "decided_at": "", "comment": ""}


def export_pending(store: ReviewStore, path: str | Path, fmt: str, limit: int | None = None) -> int:
    """Write pending items to ``path`` (a file for jsonl/csv, a directory for labelstudio)."""
    items = store.list_pending(limit=limit)
    path = Path(path)
    if fmt == "jsonl":
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(json.dumps(_row_for(s), ensure_ascii=False) + "\n" for s in items))
    elif fmt == "csv":
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        # utf-8-sig writes the BOM Excel needs to recognise UTF-8 (otherwise Chinese is mojibake)
        with tmp.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.DictWriter(f, fieldnames=EXPORT_COLUMNS)
            w.writeheader()
            for s in items:
                w.writerow({k: ("" if v is None else v) for k, v in _row_for(s).items()})
        tmp.replace(path)
    elif fmt == "labelstudio":
        path.mkdir(parents=True, exist_ok=True)
        tasks = [labelstudio_task(s) for s in items]
        atomic_write_text(path / "tasks.json", json.dumps(tasks, ensure_ascii=False, indent=1))
        atomic_write_text(path / "labeling_config.xml", LABEL_STUDIO_CONFIG)
    else:
        raise UserError(f"unknown export format {fmt!r} (jsonl, csv, labelstudio)")
    return len(items)


def labelstudio_task(s: StoredItem) -> dict[str, Any]:
    i = s.item
    g = i.metadata.get("quality.grounding")
    return {
        "data": {"item_id": i.item_id, "title": i.title or i.doc_id, "context": i.context or "（无原文）",
                 "question": i.question, "answer": i.answer, "task_type": i.task_type, "origin": i.origin},
        "predictions": [{
            "model_version": str(i.metadata.get("synth.model") or i.origin),
            "score": float(g) if g is not None else 0.0,
            "result": [
                {"from_name": "decision", "to_name": "question", "type": "choices",
                 "value": {"choices": ["accept"]}},
                {"from_name": "answer", "to_name": "question", "type": "textarea",
                 "value": {"text": [i.answer]}},
            ],
        }],
    }


# ---- import ---------------------------------------------------------------------------------------

@dataclass
class ImportReport:
    rows: int = 0
    recorded: int = 0
    duplicates: int = 0
    skipped_undecided: int = 0
    cancelled: int = 0
    unknown_items: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # item ids whose status is now conflict

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "recorded": self.recorded, "duplicates": self.duplicates,
                "skipped_undecided": self.skipped_undecided, "cancelled": self.cancelled,
                "unknown_items": len(self.unknown_items), "invalid": len(self.invalid),
                "conflicts": sorted(set(self.conflicts))}


@dataclass
class _Row:
    item_id: str
    decision: str | None
    edited_answer: str | None
    annotator: str
    decided_at: str | None
    comment: str | None = None
    cancelled: bool = False
    where: str = ""


def normalise_decision(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip().lower()
    if not s:
        return None
    if s in _ACCEPT:
        return "accept"
    if s in _REJECT:
        return "reject"
    return "?" + s


def detect_format(path: Path) -> str:
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() == ".jsonl":
        return "jsonl"
    if path.suffix.lower() == ".json":
        return "labelstudio"
    raise UserError(f"cannot tell the format of {path}; pass --format jsonl|csv|labelstudio")


def import_decisions(store: ReviewStore, path: str | Path, fmt: str = "auto", annotator: str | None = None,
                     channel: str | None = None) -> ImportReport:
    """Record the decisions in a reviewed file. Idempotent: importing it again records nothing."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"review file not found: {path}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    readers = {"jsonl": _read_jsonl, "csv": _read_csv, "labelstudio": _read_labelstudio}
    if fmt not in readers:
        raise UserError(f"unknown import format {fmt!r} (jsonl, csv, labelstudio)")
    rep = ImportReport()
    for row in readers[fmt](path, rep):
        rep.rows += 1
        if row.cancelled:
            rep.cancelled += 1
            continue
        if not row.item_id:
            rep.invalid.append(f"{row.where}: no item_id")
            continue
        if row.decision is None:
            rep.skipped_undecided += 1
            continue
        if row.decision.startswith("?"):
            rep.invalid.append(f"{row.where}: unknown decision {row.decision[1:]!r}")
            continue
        out = store.record_decision(
            row.item_id, row.decision, row.annotator or annotator or f"{fmt}:unknown",
            edited_answer=row.edited_answer, decided_at=row.decided_at, channel=channel or fmt, comment=row.comment)
        if out.result == "unknown_item":
            rep.unknown_items.append(row.item_id)
        elif out.result == "invalid":
            rep.invalid.append(f"{row.where}: {out.detail}")
        elif out.result == "duplicate":
            rep.duplicates += 1
        else:
            rep.recorded += 1
        if out.conflict:
            rep.conflicts.append(row.item_id)
    return rep


def _flat_row(rec: dict[str, Any], where: str) -> _Row:
    edited = rec.get("edited_answer")
    return _Row(item_id=str(rec.get("item_id") or "").strip(), decision=normalise_decision(rec.get("decision")),
                edited_answer=edited if isinstance(edited, str) and edited.strip() else None,
                annotator=str(rec.get("annotator") or "").strip(), decided_at=(str(rec.get("decided_at") or "") or None),
                comment=(str(rec.get("comment") or "") or None), where=where)


def _read_jsonl(path: Path, rep: ImportReport) -> Iterator[_Row]:
    for n, rec, problem in iter_jsonl(path):
        if problem is None:
            yield _flat_row(rec, f"{path.name}:{n}")
        else:
            rep.invalid.append(f"{path.name}:{n}: {problem}")


def _read_csv(path: Path, rep: ImportReport) -> Iterator[_Row]:
    # utf-8-sig strips the BOM if present; Excel may re-save as GB18030, so fall back to that.
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="gb18030")
    import io

    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "item_id" not in reader.fieldnames:
        raise UserError(f"{path}: a review CSV needs an 'item_id' column (got {reader.fieldnames})")
    for n, rec in enumerate(reader, 2):
        yield _flat_row(rec, f"{path.name}:{n}")


def _annotator_of(ann: dict[str, Any]) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):  # some versions export the user object
        who = who.get("email") or who.get("username") or who.get("id")
    if who is None or who == "":
        return "labelstudio:unknown"
    return f"labelstudio:{who}"


def _read_labelstudio(path: Path, rep: ImportReport) -> Iterator[_Row]:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not a Label Studio JSON export: {e}") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise UserError(f"{path} is not a Label Studio JSON export (expected a list of tasks)")
    for t_i, task in enumerate(tasks):
        where = f"{path.name}[task {task.get('id', t_i) if isinstance(task, dict) else t_i}]"
        if not isinstance(task, dict):
            rep.invalid.append(f"{where}: not an object")
            continue
        if "annotations" not in task and "decision" in task:  # JSON-MIN: one flat record per annotation
            yield _Row(item_id=str(task.get("item_id") or ""), decision=normalise_decision(task.get("decision")),
                       edited_answer=_text_value(task.get("answer")), annotator=f"labelstudio:{task.get('annotator', 'unknown')}",
                       decided_at=task.get("updated_at") or task.get("created_at"), where=where)
            continue
        item_id = str((task.get("data") or {}).get("item_id") or "")
        annotations = task.get("annotations") or []
        if not annotations:
            rep.skipped_undecided += 1
            continue
        for ann in annotations:
            if ann.get("was_cancelled"):
                yield _Row(item_id, None, None, _annotator_of(ann), None, cancelled=True, where=where)
                continue
            decision, answer, comment = None, None, None
            for region in ann.get("result") or []:
                value = region.get("value") or {}
                if region.get("from_name") == "decision" and region.get("type") == "choices":
                    choices = value.get("choices") or []
                    decision = normalise_decision(choices[0]) if choices else None
                elif region.get("from_name") == "answer" and region.get("type") == "textarea":
                    answer = _text_value(value.get("text"))
                elif region.get("type") == "textarea" and region.get("from_name") == "comment":
                    comment = _text_value(value.get("text"))
            yield _Row(item_id, decision, answer, _annotator_of(ann),
                       ann.get("updated_at") or ann.get("created_at"), comment=comment, where=where)


def _text_value(v: Any) -> str | None:
    if isinstance(v, list):
        v = "\n".join(str(x) for x in v)
    if isinstance(v, str) and v.strip():
        return v
    return None
