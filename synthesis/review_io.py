"""The review round trip: export items, import decisions (JSONL, CSV, Label Studio).

Exports select the items not yet exported to that target (by default the format) or changed since
(``exports`` table in the store): pending items, or with ``conflicts=True`` the items in conflict,
each carrying the decisions that disagree and ``resolve`` set, so the lead's answer settles them.
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
are skipped (not reviewed yet); unknown ids and unreadable rows are counted and reported. Every
decision is an event with its own id and time (Label Studio: annotation ``id`` and ``updated_at``;
CSV/JSONL: ``decision_id`` and ``decided_at`` columns), so a revised annotation is recorded even when
it returns to an earlier decision, and re-importing the same file records nothing. Annotators are
named by e-mail when the export carries the user object, or through a user map (``--users``:
Label Studio's ``/api/users`` JSON, ``{"id": "name"}`` or a CSV ``id,email``).
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
                  "decision", "edited_answer", "annotator", "decided_at", "comment", "resolve", "review_notes",
                  "decision_id"]
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
  <Text name="review_notes" value="$review_notes"/>
  <Header value="审核 / Decision"/>
  <Choices name="decision" toName="question" choice="single-radio" showInline="true" required="true">
    <Choice value="accept" hint="答案正确、有依据（可先修改答案再接受）"/>
    <Choice value="reject" hint="问题无意义、答案错误或无依据"/>
  </Choices>
  <Header value="答案（可编辑） / Answer (editable)"/>
  <TextArea name="answer" toName="question" editable="true" rows="8" maxSubmissions="1"/>
</View>
"""


def review_notes(store: ReviewStore, s: StoredItem) -> str:
    """For a conflict: the decisions that disagree, one line each (what the lead settles)."""
    if s.status != "conflict":
        return ""
    lines = ["待裁定的分歧 / Conflicting decisions:"]
    for d in store.effective_decisions(s.item.item_id):
        verdict = {"accept": "通过 accept", "reject": "驳回 reject"}[d.decision]
        text = f"- {d.annotator} ({d.decided_at}): {verdict}"
        if d.edited_answer:
            text += f"，修改后的答案 / edited answer: {d.edited_answer}"
        if d.comment:
            text += f"；理由 / reason: {d.comment}"
        lines.append(text)
    return "\n".join(lines)


def _row_for(s: StoredItem, notes: str = "") -> dict[str, Any]:
    i = s.item
    return {"item_id": i.item_id, "task_type": i.task_type, "origin": i.origin, "title": i.title,
            "question": i.question, "answer": i.answer, "context": i.context,
            "grounding": i.metadata.get("quality.grounding"), "decision": "", "edited_answer": "",
            "annotator": "", "decided_at": "", "comment": "", "resolve": 1 if s.status == "conflict" else "",
            "review_notes": notes, "decision_id": ""}


def export_pending(store: ReviewStore, path: str | Path, fmt: str, limit: int | None = None) -> int:
    """Write pending items not yet exported in this format to ``path``."""
    return export_items(store, path, fmt, limit=limit)


def export_items(store: ReviewStore, path: str | Path, fmt: str, *, conflicts: bool = False,
                 everything: bool = False, limit: int | None = None, target: str | None = None) -> int:
    """Write items for annotators to ``path`` (a file for jsonl/csv, a directory for labelstudio).

    Selects pending items (``conflicts``: items in conflict, for a lead) that were not exported to
    ``target`` (default: the format) yet or changed since; ``everything`` re-exports them all.
    The export is recorded in the store once the file is written.
    """
    if fmt not in ("jsonl", "csv", "labelstudio"):
        raise UserError(f"unknown export format {fmt!r} (jsonl, csv, labelstudio)")
    target = target or fmt
    items = store.select_for_export(["conflict"] if conflicts else ["pending"], target, everything, limit)
    notes = {s.item.item_id: review_notes(store, s) for s in items}
    path = Path(path)
    if fmt == "jsonl":
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(json.dumps(_row_for(s, notes[s.item.item_id]), ensure_ascii=False) + "\n"
                                        for s in items))
    elif fmt == "csv":
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        # utf-8-sig writes the BOM Excel needs to recognise UTF-8 (otherwise Chinese is mojibake)
        with tmp.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.DictWriter(f, fieldnames=EXPORT_COLUMNS)
            w.writeheader()
            for s in items:
                w.writerow({k: ("" if v is None else v) for k, v in _row_for(s, notes[s.item.item_id]).items()})
        tmp.replace(path)
    elif fmt == "labelstudio":
        path.mkdir(parents=True, exist_ok=True)
        tasks = [labelstudio_task(s, notes[s.item.item_id]) for s in items]
        atomic_write_text(path / "tasks.json", json.dumps(tasks, ensure_ascii=False, indent=1))
        atomic_write_text(path / "labeling_config.xml", LABEL_STUDIO_CONFIG)
    store.mark_exported(items, target)
    return len(items)


def labelstudio_task(s: StoredItem, notes: str = "") -> dict[str, Any]:
    i = s.item
    g = i.metadata.get("quality.grounding")
    return {
        "data": {"item_id": i.item_id, "title": i.title or i.doc_id, "context": i.context or "（无原文）",
                 "question": i.question, "answer": i.answer, "task_type": i.task_type, "origin": i.origin,
                 "resolve": s.status == "conflict", "review_notes": notes},
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
    resolved: int = 0  # settlements recorded (conflict exports, Label Studio ground truth)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "recorded": self.recorded, "duplicates": self.duplicates, "resolved": self.resolved,
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
    resolve: bool = False
    source_id: str | None = None


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
                     channel: str | None = None, users: dict[str, str] | str | Path | None = None) -> ImportReport:
    """Record the decisions in a reviewed file. Idempotent: importing it again records nothing.

    ``users`` maps Label Studio user ids to names (a dict or a file, see ``load_user_map``).
    """
    path = Path(path)
    user_map = load_user_map(users) if isinstance(users, (str, Path)) else dict(users or {})
    if not path.exists():
        raise UserError(f"review file not found: {path}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    readers = {"jsonl": _read_jsonl, "csv": _read_csv, "labelstudio": _read_labelstudio}
    if fmt not in readers:
        raise UserError(f"unknown import format {fmt!r} (jsonl, csv, labelstudio)")
    rep = ImportReport()
    rows = _read_labelstudio(path, rep, user_map) if fmt == "labelstudio" else readers[fmt](path, rep)
    for row in rows:
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
            edited_answer=row.edited_answer, decided_at=row.decided_at, channel=channel or fmt, comment=row.comment,
            resolve=row.resolve, source_id=row.source_id)
        if out.result == "unknown_item":
            rep.unknown_items.append(row.item_id)
        elif out.result == "invalid":
            rep.invalid.append(f"{row.where}: {out.detail}")
        elif out.result == "duplicate":
            rep.duplicates += 1
        else:
            rep.recorded += 1
            rep.resolved += int(row.resolve)
        if out.conflict:
            rep.conflicts.append(row.item_id)
    return rep


def _truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "y", "是")


def _flat_row(rec: dict[str, Any], where: str) -> _Row:
    edited = rec.get("edited_answer")
    return _Row(item_id=str(rec.get("item_id") or "").strip(), decision=normalise_decision(rec.get("decision")),
                edited_answer=edited if isinstance(edited, str) and edited.strip() else None,
                annotator=str(rec.get("annotator") or "").strip(), decided_at=(str(rec.get("decided_at") or "") or None),
                comment=(str(rec.get("comment") or "") or None), where=where,
                resolve=_truthy(rec.get("resolve") or ""),
                source_id=(str(rec.get("decision_id") or "").strip() or None))


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


def load_user_map(path: str | Path) -> dict[str, str]:
    """User id -> name from Label Studio's ``/api/users`` JSON (a list of user objects, or
    ``{"results": [...]}``), a plain ``{"id": "name"}`` JSON object, or a CSV with ``id`` and
    ``email`` (or ``name``/``username``) columns."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"user map not found: {p}")
    if p.suffix.lower() == ".csv":
        rows = list(csv.DictReader(p.read_text(encoding="utf-8-sig").splitlines()))
        if not rows or "id" not in rows[0]:
            raise UserError(f"{p}: a user map CSV needs 'id' and 'email' (or 'name') columns")
        return {str(r["id"]).strip(): (r.get("email") or r.get("name") or r.get("username") or "").strip()
                for r in rows if (r.get("email") or r.get("name") or r.get("username"))}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{p} is not a user map: {e}") from None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        data = data["results"]
    if isinstance(data, list):
        return {str(u["id"]): _user_name(u) for u in data if isinstance(u, dict) and "id" in u and _user_name(u)}
    if isinstance(data, dict):
        return {str(k): str(v) for k, v in data.items()}
    raise UserError(f"{p} is not a user map (a list of users or an id -> name object)")


def _user_name(u: dict[str, Any]) -> str:
    return str(u.get("email") or u.get("username") or "").strip()


def _annotator_of(ann: dict[str, Any], users: dict[str, str] | None = None) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):  # the user object: its e-mail names the annotator
        name = _user_name(who)
        if name:
            return name
        who = who.get("id")
    if who is None or who == "":
        return "labelstudio:unknown"
    if (users or {}).get(str(who)):
        return users[str(who)]
    # the annotations API (not the JSON export) carries "created_username": "<e-mail>, <id>"
    created = ann.get("created_username")
    if isinstance(created, str) and "@" in created.split(",")[0]:
        return created.split(",")[0].strip()
    return f"labelstudio:{who}"


def _read_labelstudio(path: Path, rep: ImportReport, users: dict[str, str] | None = None) -> Iterator[_Row]:
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
            who = task.get("annotator", "unknown")
            name = (users or {}).get(str(who)) or (who if isinstance(who, str) and "@" in who else f"labelstudio:{who}")
            yield _Row(item_id=str(task.get("item_id") or ""), decision=normalise_decision(task.get("decision")),
                       edited_answer=_text_value(task.get("answer")), annotator=name,
                       decided_at=task.get("updated_at") or task.get("created_at"), where=where,
                       resolve=task.get("resolve") is True,
                       source_id=f"ls:{task['annotation_id']}" if task.get("annotation_id") is not None else None)
            continue
        data = task.get("data") or {}
        item_id = str(data.get("item_id") or "")
        settles = data.get("resolve") is True  # a task of a --conflicts export: the lead settles it
        annotations = task.get("annotations") or []
        if not annotations:
            rep.skipped_undecided += 1
            continue
        for ann in annotations:
            if ann.get("was_cancelled"):
                yield _Row(item_id, None, None, _annotator_of(ann, users), None, cancelled=True, where=where)
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
            # the annotation's own id and last-update time make it an event: a revision in Label
            # Studio (same id, later updated_at) is recorded, a re-import of the same state is not
            yield _Row(item_id, decision, answer, _annotator_of(ann, users),
                       ann.get("updated_at") or ann.get("created_at"), comment=comment, where=where,
                       resolve=settles or ann.get("ground_truth") is True,
                       source_id=f"ls:{ann['id']}" if ann.get("id") is not None else None)


def _text_value(v: Any) -> str | None:
    if isinstance(v, list):
        v = "\n".join(str(x) for x in v)
    if isinstance(v, str) and v.strip():
        return v
    return None
