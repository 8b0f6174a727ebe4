"""Stage 4 (one task per input shard, same sharding as stage 1): drop removed documents.

Re-reads this rank's input in the same order as the signature stage, writes each removed document
to ``<out>/removed/RANK.parquet`` (with its cluster id, the kept document's id, the reason and its
token count) and passes kept documents on with ``dedup.*`` metadata.
"""
from __future__ import annotations

import json

from datatrove.pipeline.base import PipelineStep

from .layout import Layout, save_text

REMOVED_SCHEMA_FIELDS = [("id", "string"), ("text", "string"), ("source", "string"), ("cluster_id", "int64"),
                         ("cluster_size", "int64"), ("kept_id", "string"), ("reason", "string"),
                         ("n_tokens", "int64"), ("metadata", "string")]


class DedupFilter(PipelineStep):
    type = "🫂 - DEDUP"
    name = "🎯 dedup filter"

    def __init__(self, output_dir: str, tokenizer: str | None = "qwen2.5", batch_size: int = 256):
        super().__init__()
        self.layout = Layout(output_dir)
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def run(self, data, rank: int = 0, world_size: int = 1):
        import os

        import pyarrow as pa
        import pyarrow.parquet as pq
        import polars as pl

        lay = self.layout
        decisions = {}
        if lay.decisions(rank).exists():
            for row in pl.read_parquet(lay.decisions(rank)).iter_rows(named=True):
                decisions[row["idx"]] = row
        expected_docs = pq.ParquetFile(lay.docs(rank)).metadata.num_rows if lay.docs(rank).exists() else 0
        tok = None
        if self.tokenizer:
            from corpora_manifests.tokenizer import count_tokens, load_tokenizer

            tok = load_tokenizer(self.tokenizer)
        schema = pa.schema([(n, getattr(pa, t)()) for n, t in REMOVED_SCHEMA_FIELDS])
        target = lay.removed(rank)
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a killed attempt of this rank
            stale.unlink(missing_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        writer = pq.ParquetWriter(tmp, schema, compression="zstd")
        pending: list[dict] = []
        stats = {"removed_documents": 0, "removed_tokens": 0, "removed_chars": 0, "kept_documents": 0,
                 "removed_by_reason": {}}

        def flush():
            if not pending:
                return
            counts = count_tokens(tok, [r["text"] for r in pending]) if tok is not None else [None] * len(pending)
            for r, n in zip(pending, counts):
                r["n_tokens"] = n
                stats["removed_tokens"] += n or 0
            writer.write_table(pa.Table.from_pylist(pending, schema=schema))
            pending.clear()

        idx = -1
        try:
            for idx, doc in enumerate(data or ()):
                d = decisions.get(idx)
                if d is not None and d["id"] != str(doc.id):
                    raise RuntimeError(
                        f"rank {rank} document {idx} is {doc.id!r} but the signature stage saw {d['id']!r}: "
                        "the input changed between stages or the task count differs; delete dedup_work/ and re-run")
                if d is None:
                    stats["kept_documents"] += 1
                    yield doc
                    continue
                doc.metadata["dedup.cluster_id"] = int(d["cluster_id"])
                doc.metadata["dedup.cluster_size"] = int(d["cluster_size"])
                if d["kept"]:
                    stats["kept_documents"] += 1
                    self.stat_update("kept_in_cluster")
                    yield doc
                    continue
                self.stat_update("removed", f"removed_{d['reason']}")
                stats["removed_documents"] += 1
                stats["removed_chars"] += len(doc.text)
                stats["removed_by_reason"][d["reason"]] = stats["removed_by_reason"].get(d["reason"], 0) + 1
                md = {k: v for k, v in doc.metadata.items() if k not in ("source", "n_tokens")}
                md["dedup.kept_id"] = d["kept_id"]
                md["dedup.reason"] = d["reason"]
                pending.append({
                    "id": str(doc.id), "text": doc.text, "source": str(doc.metadata.get("source") or ""),
                    "cluster_id": int(d["cluster_id"]), "cluster_size": int(d["cluster_size"]),
                    "kept_id": d["kept_id"], "reason": d["reason"], "n_tokens": None,
                    "metadata": json.dumps(md, ensure_ascii=False, sort_keys=True, default=str),
                })
                if len(pending) >= self.batch_size:
                    flush()
            flush()
            writer.close()
        except BaseException:
            writer.close()
            tmp.unlink(missing_ok=True)
            raise
        if idx + 1 != expected_docs:
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"rank {rank} read {idx + 1} documents, the signature stage read {expected_docs}: "
                               "the input changed between stages; delete dedup_work/ and re-run")
        os.replace(tmp, target)
        save_text(lay.filter_stats(rank), json.dumps(stats))
