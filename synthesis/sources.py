"""Domain documents for synthesis: from a CPT manifest (the normal path) or a JSONL file.

A broken line or a record without text is rejected with a reason, never fatal. A missing path
or an unreadable manifest is the user's to fix (UserError).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from corpora_manifests.jsonl import iter_jsonl
from corpora_manifests.errors import UserError
from corpora_manifests.rejects import RejectsWriter

from .config import SourceConfig


@dataclass
class SourceDoc:
    doc_id: str
    text: str
    title: str = ""
    group: str = ""  # split unit: version group of a law, else the document itself
    meta: dict[str, Any] = field(default_factory=dict)


def _title_from_text(text: str) -> str:
    for line in text.splitlines():
        s = line.strip().lstrip("#").strip()
        if s:
            return s[:80]
    return ""


def iter_documents(cfg: SourceConfig, rejects: RejectsWriter | None = None) -> Iterator[SourceDoc]:
    path = Path(cfg.path)
    if not path.exists():
        raise UserError(f"source not found: {path}")
    rows = _iter_manifest(path) if cfg.kind == "manifest" else _iter_jsonl(path, rejects)
    n = 0
    for lineno, rec in rows:
        text = rec.get(cfg.text_field)
        doc_id = rec.get(cfg.id_field)
        meta = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
        if not isinstance(text, str) or not text.strip():
            if rejects:
                rejects.reject("empty_text", id=str(doc_id), path=f"{path}:{lineno}", stage="source")
            continue
        if doc_id is None:
            if rejects:
                rejects.reject("missing_id", path=f"{path}:{lineno}", stage="source")
            continue
        title = rec.get(cfg.title_field) or meta.get(cfg.title_field) or _title_from_text(text)
        group = None
        if cfg.group_field:
            group = rec.get(cfg.group_field) or meta.get(cfg.group_field)
        yield SourceDoc(
            doc_id=str(doc_id), text=text, title=str(title), group=f"g:{group}" if group else f"d:{doc_id}",
            meta={k: rec[k] for k in ("law_name", "category", "region", "version_date", "source") if k in rec},
        )
        n += 1
        if cfg.limit and n >= cfg.limit:
            return


def _iter_jsonl(path: Path, rejects: RejectsWriter | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, rec, problem in iter_jsonl(path):
        if problem is None:
            yield lineno, rec
        elif rejects:
            reason = "not_an_object" if problem.startswith("not_an_object") else "bad_json_line"
            rejects.reject(reason, path=f"{path}:{lineno}", stage="source", detail=problem)


def _iter_manifest(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    from corpora_manifests.models import ManifestError, load_manifest
    from corpora_manifests.shards import iter_rows

    try:
        manifest = load_manifest(path)
    except ManifestError as e:
        raise UserError(str(e).splitlines()[0]) from None
    if manifest.stage != "cpt":
        raise UserError(f"{path}: synthesis reads a CPT manifest, this one has stage {manifest.stage!r}")
    directory = path if path.is_dir() else path.parent
    for i, row in enumerate(iter_rows(directory, manifest), 1):
        yield i, row
