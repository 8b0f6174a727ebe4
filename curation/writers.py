"""Write a datatrove pipeline's documents as CPT parquet shards and merge all ranks into one manifest.

``ShardsWriter`` is the last step of a pipeline: each datatrove task (rank) writes its own shards
``<out>/data/part-r{rank:05d}-NNNNN.parquet`` through ``corpora_manifests.shards.ShardWriter``
(CPT_SCHEMA: id, text, source, n_tokens, metadata as JSON) and, when it has finished, a sidecar
``<out>/.parts/r{rank:05d}.json`` listing its ``Shard`` entries. After the executor is done,
``finalize_manifest`` merges the sidecars (rank order) into ONE ``manifest.json``.

Resumability: a rank that re-runs (datatrove did not mark it completed) first deletes its own
shards, so a crashed attempt never leaves half a rank behind; ranks datatrove marked completed are
skipped by the executor and keep their sidecars.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpora_manifests.models import Manifest, Provenance, Shard, Source, TokenizerInfo, atomic_write_text

PARTS_DIR = ".parts"
# Keys that are columns of their own, not metadata.
_COLUMN_KEYS = {"source", "n_tokens", "token_count"}


def rank_prefix(rank: int) -> str:
    return f"data/part-r{rank:05d}"


class ShardsWriter(PipelineStep):
    """Documents → CPT parquet shards for this rank + a sidecar with the rank's shard entries.

    ``n_tokens`` comes from ``metadata["n_tokens"]`` (or datatrove's ``token_count``); when neither
    is present and ``tokenizer`` is set, it is counted here with that tokenizer (batched, Rust
    backend). ``source`` comes from ``metadata["source"]`` or ``default_source``.
    """

    type = "💽 - WRITER"
    name = "🧱 CPT shards"

    def __init__(self, output_dir: str | Path, default_source: str = "unknown", tokenizer: str | None = "qwen2.5",
                 target_bytes: int = 512 * 1024 * 1024, batch_size: int = 256):
        super().__init__()
        self.output_dir = str(output_dir)
        self.default_source = default_source
        self.tokenizer = tokenizer
        self.target_bytes = target_bytes
        self.batch_size = batch_size

    def _rows(self, docs: list, tok) -> Iterable[dict[str, Any]]:
        missing = [i for i, d in enumerate(docs)
                   if d.metadata.get("n_tokens") is None and d.metadata.get("token_count") is None]
        counts: dict[int, int] = {}
        if missing and tok is not None:
            from corpora_manifests.tokenizer import count_tokens

            counts = dict(zip(missing, count_tokens(tok, [docs[i].text for i in missing])))
        for i, d in enumerate(docs):
            md = d.metadata
            n = md.get("n_tokens", md.get("token_count", counts.get(i, 0)))
            yield {
                "id": str(d.id),
                "text": d.text,
                "source": str(md.get("source") or self.default_source),
                "n_tokens": int(n or 0),
                "metadata": {k: v for k, v in md.items() if k not in _COLUMN_KEYS},
            }

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from corpora_manifests.shards import CPT_SCHEMA, ShardWriter

        root = Path(self.output_dir)
        prefix = rank_prefix(rank)
        # a re-run of this rank replaces everything an earlier, unfinished attempt wrote
        for old in (root / "data").glob(f"{Path(prefix).name}-*.parquet*"):
            old.unlink()
        tok = None
        if self.tokenizer:
            from corpora_manifests.tokenizer import load_tokenizer

            tok = load_tokenizer(self.tokenizer)
        records = chars = 0
        formats: dict[str, int] = {}
        writer = ShardWriter(root, schema=CPT_SCHEMA, prefix=prefix, target_bytes=self.target_bytes)
        try:
            batch: list = []
            for doc in data or ():
                fmt = str(doc.metadata.get("format", "unknown"))
                formats[fmt] = formats.get(fmt, 0) + 1
                batch.append(doc)
                if len(batch) >= self.batch_size:
                    with self.track_time(unit="batch"):
                        writer.write_many(self._rows(batch, tok))
                    records += len(batch)
                    chars += sum(len(d.text) for d in batch)
                    batch = []
            if batch:
                writer.write_many(self._rows(batch, tok))
                records += len(batch)
                chars += sum(len(d.text) for d in batch)
            shards = writer.close()
        except BaseException:
            writer.abort()
            raise
        self.stat_update("documents", value=records)
        sidecar = {"rank": rank, "world_size": world_size, "records": records, "chars": chars,
                   "formats": formats, "shards": [s.model_dump() for s in shards]}
        parts = root / PARTS_DIR
        parts.mkdir(parents=True, exist_ok=True)
        atomic_write_text(parts / f"r{rank:05d}.json", json.dumps(sidecar, ensure_ascii=False))
        return
        yield  # a generator: nothing flows past the writer


def read_parts(output_dir: str | Path) -> list[dict[str, Any]]:
    parts = Path(output_dir) / PARTS_DIR
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(parts.glob("r*.json"))]


def finalize_manifest(output_dir: str | Path, name: str, stage: str, provenance: Provenance,
                      tokenizer_info: TokenizerInfo | None = None, sources: list[Source] | None = None,
                      stats: dict[str, Any] | None = None) -> Manifest:
    """Merge every rank's sidecar into one ``manifest.json`` (written last, atomically).

    ``stats`` is stored as given, plus ``stats["rejects"]`` (``{stage: {reason: count}}`` read from
    ``<out>/rejects/``) unless the caller already set it.
    """
    from curation.rejects import count_reject_reasons

    output_dir = Path(output_dir)
    shards: list[Shard] = []
    for part in read_parts(output_dir):
        shards.extend(Shard.model_validate(s) for s in part["shards"])
    stats = dict(stats or {})
    stats.setdefault("rejects", count_reject_reasons(output_dir))
    manifest = Manifest(name=name, stage=stage, producer=provenance, tokenizer=tokenizer_info,
                        sources=list(sources or []), shards=shards, stats=stats)
    manifest.write(output_dir)
    return manifest
