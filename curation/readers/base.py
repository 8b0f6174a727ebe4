"""What every extractor returns or raises."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ExtractError(Exception):
    """A file (or record) that cannot become a document; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Extracted:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    id_suffix: str | None = None  # records in a dump: "#<id>"; None for one-document files
