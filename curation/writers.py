"""Write a datatrove pipeline's documents as CPT parquet shards and merge all ranks into one manifest.

``ShardsWriter`` is the last step of a pipeline: the shared ``corpora_manifests.shard_step.ShardsStep``
with CPT rows (CPT_SCHEMA: id, text, source, n_tokens, metadata as JSON). Each rank writes
``<out>/data/part-r{rank:05d}-NNNNN.parquet`` and the sidecar ``<out>/.parts/r{rank:05d}.json``;
after the executor is done, ``finalize_manifest`` merges the sidecars (rank order) into ONE
``manifest.json``. A rank that re-runs replaces its own shards (see ``ShardsStep``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from corpora_manifests.models import Manifest, Provenance, Shard, Source, TokenizerInfo
from corpora_manifests.shard_step import PARTS_DIR, ShardsStep, rank_prefix, read_parts  # noqa: F401 (re-exported)

# Keys that are columns of their own, not metadata.
_COLUMN_KEYS = {"source", "n_tokens", "token_count"}


class ShardsWriter(ShardsStep):
    """Documents → CPT rows (``id, text, source, n_tokens, metadata``) through the shared ``ShardsStep``.

    ``n_tokens`` comes from ``metadata["n_tokens"]`` (or datatrove's ``token_count``); when neither
    is present and ``tokenizer`` is set, it is counted here with that tokenizer (batched). ``source``
    comes from ``metadata["source"]`` or ``default_source``. The sidecar adds the rank's characters and
    input formats.
    """

    name = "🧱 CPT shards"

    def __init__(self, output_dir: str | Path, default_source: str = "unknown", tokenizer: str | None = "qwen2.5",
                 target_bytes: int = 512 * 1024 * 1024, batch_size: int = 256):
        super().__init__(output_dir, schema="cpt", tokenizer=tokenizer, target_bytes=target_bytes,
                         batch_size=batch_size)
        self.default_source = default_source

    def rows(self, docs: list, tok) -> Iterable[dict[str, Any]]:
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

    def reset(self) -> None:
        self._chars = 0
        self._formats: dict[str, int] = {}

    def observe(self, doc) -> None:
        self._chars += len(doc.text)
        fmt = str(doc.metadata.get("format", "unknown"))
        self._formats[fmt] = self._formats.get(fmt, 0) + 1

    def summary(self) -> dict[str, Any]:
        return {"chars": self._chars, "formats": self._formats}


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
