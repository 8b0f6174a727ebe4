"""The manifest contract between every stage: pydantic models, atomic write, validated load.

A manifest (``manifest.json``) sits next to the shards it describes. Downstream code reads only
manifests, never another package's file layout, so every field here is part of a public contract:
add fields, never repurpose them, and bump ``SCHEMA_VERSION`` on a breaking change.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = "1.0"
MANIFEST_FILENAME = "manifest.json"
Stage = Literal["cpt", "sft_stage1", "sft_stage2", "eval", "distill_logits"]


class ManifestError(ValueError):
    """A manifest is missing, unreadable or invalid; the message names the bad field."""


class _Strict(BaseModel):
    # Unknown keys are typos or a newer schema: both must fail loudly, not be dropped silently.
    model_config = ConfigDict(extra="forbid")


class Provenance(_Strict):
    """Who produced the data and how: enough to re-run it."""

    tool: str = "soaes"
    version: str
    git_commit: str | None = None
    command: str
    config: dict[str, Any] | None = None
    config_sha256: str | None = None
    created_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat())
    usage: dict[str, Any] = Field(default_factory=dict, description="e.g. LLM requests/tokens/retries")


class TokenizerInfo(_Strict):
    name: str
    vocab_size: int = Field(gt=0)
    fingerprint: str = Field(min_length=16)


class Source(_Strict):
    name: str
    uri: str | None = None
    licence: str | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="e.g. read/kept/rejected")


class Shard(_Strict):
    path: str = Field(description="relative to the manifest's directory, POSIX separators")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    records: int = Field(ge=0)
    tokens: int = Field(ge=0, default=0)
    split: str | None = None

    @field_validator("path")
    @classmethod
    def _relative(cls, v: str) -> str:
        if v.startswith("/") or ".." in Path(v).parts:
            raise ValueError("shard path must be relative to the manifest directory and stay inside it")
        return v


class Totals(_Strict):
    shards: int = 0
    records: int = 0
    tokens: int = 0
    bytes: int = 0


class SplitInfo(_Strict):
    records: int = 0
    tokens: int = 0
    shards: list[str] = Field(default_factory=list)


class Manifest(_Strict):
    schema_version: str = SCHEMA_VERSION
    name: str = Field(min_length=1)
    stage: Stage
    producer: Provenance
    tokenizer: TokenizerInfo | None = None
    sources: list[Source] = Field(default_factory=list)
    shards: list[Shard] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)
    stats: dict[str, Any] = Field(default_factory=dict)
    splits: dict[str, SplitInfo] = Field(default_factory=dict)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: str) -> str:
        if v.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"unsupported schema_version {v!r}; this tool reads {SCHEMA_VERSION}")
        return v

    @model_validator(mode="after")
    def _derive(self) -> "Manifest":
        # Totals and splits are derived from the shard list so they can never disagree with it.
        self.totals = Totals(
            shards=len(self.shards),
            records=sum(s.records for s in self.shards),
            tokens=sum(s.tokens for s in self.shards),
            bytes=sum(s.bytes for s in self.shards),
        )
        splits: dict[str, SplitInfo] = {}
        for s in self.shards:
            if s.split is None:
                continue
            info = splits.setdefault(s.split, SplitInfo())
            info.records += s.records
            info.tokens += s.tokens
            info.shards.append(s.path)
        self.splits = splits
        paths = [s.path for s in self.shards]
        if len(paths) != len(set(paths)):
            raise ValueError("shards: the same path is listed twice")
        return self

    def shard_paths(self, root: str | Path, split: str | None = None) -> list[Path]:
        root = Path(root)
        return [root / s.path for s in self.shards if split is None or s.split == split]

    def write(self, directory: str | Path) -> Path:
        """Write ``manifest.json`` atomically (temp file + rename) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / MANIFEST_FILENAME
        atomic_write_text(target, self.model_dump_json(indent=2))
        return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; manifests, reports and stats are meant to be shared (0644 under umask 022)
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        lines.append(f"  field '{loc}': {e['msg']}")
    return "\n".join(lines)


def load_manifest(path: str | Path) -> Manifest:
    """Load and validate a manifest from a file or the directory holding ``manifest.json``."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILENAME
    if not path.exists():
        raise ManifestError(f"no manifest at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path} is not valid JSON: {e}") from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise ManifestError(f"{path} is not a valid manifest:\n{_describe(e)}") from None


def manifest_json_schema() -> dict[str, Any]:
    return Manifest.model_json_schema()
