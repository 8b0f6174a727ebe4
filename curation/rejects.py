"""Rejects for datatrove pipelines: one JSON line per dropped file or document, with a reason.

Every step that drops something writes through the same kind of writer, so ``<out>/rejects/`` has
one format whatever dropped the item::

    <out>/rejects/<stage>/<rank>.jsonl   {"id", "path", "stage", "reason", "detail", "chars", "preview"}

- filters get ``exclusion_writer=rejects_writer(out, stage)`` (datatrove's own mechanism: the
  filter's ``(False, reason)`` lands in ``metadata["filter_reason"]``);
- readers write unreadable files (zero-byte, truncated, wrong extension, garbage) through the same
  writer themselves, with ``reason`` set explicitly.

The line format is the one of ``corpora_manifests.rejects.RejectsWriter`` (``read_rejects`` reads
both), so reason counts can be merged into the manifest's ``stats``.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.writers.jsonl import JsonlWriter

PREVIEW_CHARS = 200


class RejectsJsonlWriter(JsonlWriter):
    """datatrove JsonlWriter whose records are reject lines (not whole documents)."""

    name = "🗑 Rejects"

    def __init__(self, output_dir: str | Path, stage: str):
        super().__init__(str(Path(output_dir) / "rejects" / stage), output_filename="${rank}.jsonl",
                         compression=None)
        self.stage = stage

    def _default_adapter(self, document: Document) -> dict[str, Any]:
        return _reject_record(self.stage, document)


def _reject_record(stage: str, document: Document) -> dict[str, Any]:
    md = document.metadata
    rec = {
        "id": document.id,
        "path": md.get("file_path"),
        "stage": stage,
        "reason": md.get("reject_reason") or md.get("filter_reason") or "dropped",
        "detail": md.get("reject_detail"),
        "chars": len(document.text or ""),
        "preview": (document.text or "")[:PREVIEW_CHARS] or None,
    }
    scores = {k: v for k, v in md.items() if k.startswith("quality.")}
    if scores:
        rec["scores"] = scores
    return {k: v for k, v in rec.items() if v is not None}


def rejects_writer(output_dir: str | Path, stage: str):
    """A datatrove ``JsonlWriter`` writing reject lines to ``<output_dir>/rejects/<stage>/<rank>.jsonl``.

    Usable as any datatrove filter's ``exclusion_writer``. Files are rewritten (not appended) when a
    task re-runs, so a resumed run does not duplicate its rejects.
    """
    return RejectsJsonlWriter(output_dir, stage)


def reject_document(writer, rank: int, *, id: str, path: str | None, reason: str, detail: str | None = None,
                    text: str = "") -> None:
    """Write one reject line for something that never became a kept document (e.g. an unreadable file)."""
    md = {"reject_reason": reason}
    if path is not None:
        md["file_path"] = path
    if detail:
        md["reject_detail"] = str(detail)[:500]
    writer.write(Document(text=text, id=id, metadata=md), rank)


def count_reject_reasons(output_dir: str | Path) -> dict[str, dict[str, int]]:
    """``{stage: {reason: count}}`` over every reject file of a run."""
    from corpora_manifests.jsonl import records

    root = Path(output_dir) / "rejects"
    out: dict[str, Counter] = {}
    if not root.exists():
        return {}
    for f in sorted(root.rglob("*.jsonl")):
        stage = f.parent.name if f.parent != root else f.stem
        c = out.setdefault(stage, Counter())
        for rec in records(f):
            c[rec.get("reason", "dropped")] += 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}
