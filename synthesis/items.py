"""A Q&A item: the unit that is generated, reviewed, split and written.

``item_id`` is derived from what the item *is* (origin, chunk, task type, question), so the same
generation re-run gives the same ids: review decisions made outside (CSV, Label Studio) find their
item again, and a re-import is matched, never duplicated.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TaskType = Literal["qa", "report"]
Origin = Literal["synthetic", "rules", "expert"]


def make_item_id(origin: str, chunk_id: str, task_type: str, question: str) -> str:
    blob = "\x00".join([origin, chunk_id, task_type, " ".join(question.split())])
    return "q" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


def wants_report(chunk_id: str, fraction: float) -> bool:
    """Deterministic choice of the chunks that also get a report task (same in every run)."""
    if fraction <= 0:
        return False
    h = int(hashlib.sha256(("report\x00" + chunk_id).encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


@dataclass
class QAItem:
    item_id: str
    task_type: TaskType
    origin: Origin
    question: str
    answer: str
    doc_id: str
    doc_group: str
    chunk_id: str = ""
    title: str = ""
    context: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
