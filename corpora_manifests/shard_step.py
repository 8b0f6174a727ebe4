"""The one datatrove step that writes a pipeline's documents as manifest shards (CPT or SFT).

Every stage that produces a manifest from a datatrove pipeline ends with a subclass of
``ShardsStep`` (``curation.writers.ShardsWriter`` for CPT rows, ``filters.steps.SFTShardWriter``
for SFT rows). Each datatrove task (rank) writes ``<out>/data/part-r{rank:05d}-NNNNN.parquet``
through ``ShardWriter`` (zstd, atomic rename) and, when it has finished, ONE sidecar
``<out>/.parts/r{rank:05d}.json``: ``{rank, world_size, records, shards, …summary}``. The stage's
finalize step merges the sidecars (``read_parts``, rank order) into ``manifest.json``.

Resumability: a rank that re-runs (datatrove did not mark it completed) first deletes its own
shards, so a crashed attempt never leaves half a rank behind; completed ranks keep their sidecars.
Subclasses say how a document becomes a row (``rows``) and what the rank's summary holds
(``observe`` per document, ``summary`` at the end).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

PARTS_DIR = ".parts"


def rank_prefix(rank: int) -> str:
    return f"data/part-r{rank:05d}"


def sidecar_path(output_dir: str | Path, rank: int) -> Path:
    return Path(output_dir) / PARTS_DIR / f"r{rank:05d}.json"


def read_parts(output_dir: str | Path) -> list[dict[str, Any]]:
    """Every finished rank's sidecar, in rank order."""
    parts = Path(output_dir) / PARTS_DIR
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(parts.glob("r[0-9]*.json"))]


class ShardsStep(PipelineStep):
    """Documents → this rank's parquet shards (``schema``) + its sidecar. Nothing flows past it."""

    type = "💽 - WRITER"
    name = "🧱 shards"

    def __init__(self, output_dir: str | Path, schema: str = "cpt", tokenizer: str | None = None,
                 target_bytes: int = 512 * 1024 * 1024, batch_size: int = 256):
        super().__init__()
        if schema not in ("cpt", "sft"):
            raise ValueError(f"schema must be cpt or sft, not {schema!r}")
        self.output_dir = str(output_dir)
        self.schema = schema
        self.tokenizer = tokenizer
        self.target_bytes = target_bytes
        self.batch_size = batch_size

    # -- what subclasses define ------------------------------------------------------------------
    def rows(self, docs: list[Document], tok) -> Iterable[dict[str, Any]]:
        """One shard row per document (``tok``: the loaded tokenizer, or None)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Called when a rank starts: clear per-rank summaries (one process may run several ranks)."""

    def observe(self, doc: Document) -> None:
        """Called for every written document (per-rank summaries)."""

    def summary(self) -> dict[str, Any]:
        """Extra keys of this rank's sidecar."""
        return {}

    # -- the step --------------------------------------------------------------------------------
    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from corpora_manifests.models import atomic_write_text
        from corpora_manifests.shards import CPT_SCHEMA, SFT_SCHEMA, ShardWriter

        root = Path(self.output_dir)
        prefix = rank_prefix(rank)
        self.reset()
        # a re-run of this rank replaces everything an earlier, unfinished attempt wrote
        for old in (root / "data").glob(f"{Path(prefix).name}-*.parquet*"):
            old.unlink()
        tok = None
        if self.tokenizer:
            from corpora_manifests.tokenizer import load_tokenizer

            tok = load_tokenizer(self.tokenizer)
        records = 0
        writer = ShardWriter(root, schema=SFT_SCHEMA if self.schema == "sft" else CPT_SCHEMA, prefix=prefix,
                             target_bytes=self.target_bytes)

        def flush(batch: list[Document]) -> int:
            with self.track_time(unit="batch"):
                writer.write_many(self.rows(batch, tok))
            for d in batch:
                self.observe(d)
            return len(batch)

        try:
            batch: list[Document] = []
            for doc in data or ():
                batch.append(doc)
                if len(batch) >= self.batch_size:
                    records += flush(batch)
                    batch = []
            if batch:
                records += flush(batch)
            shards = writer.close()
        except BaseException:
            writer.abort()
            raise
        self.stat_update("documents", value=records)
        sidecar = {"rank": rank, "world_size": world_size, "records": records,
                   "shards": [s.model_dump() for s in shards], **self.summary()}
        path = sidecar_path(root, rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(sidecar, ensure_ascii=False))
        return
        yield  # a generator: nothing flows past the writer
