"""Stage 3 (one task): connected components of the duplicate edges, then the keep rule per cluster.

Edges are streamed from disk in chunks and never held together: the only per-run state is one
int64 label per input document (8 bytes x documents, independent of the number of pairs, so
billions of pairs cost disk, not memory). Components come from min-label hooking with pointer
jumping (vectorised union-find): every pass hooks the root of each edge's larger label onto the
smaller one; passes repeat until no edge joins two roots.
"""
from __future__ import annotations

import json

from datatrove.pipeline.base import PipelineStep

from .config import DedupConfig
from .layout import Layout, save_parquet, save_text

CHUNK = 1 << 22


def connected_components(n: int, edge_chunks) -> "np.ndarray":
    """Label of every node 0..n-1 = smallest node of its component. ``edge_chunks()`` yields (u, v)."""
    import numpy as np

    labels = np.arange(n, dtype=np.int64)

    def compress(lab):
        while True:
            nxt = lab[lab]
            if np.array_equal(nxt, lab):
                return lab
            lab = nxt

    while True:
        changed = False
        for u, v in edge_chunks():
            lu, lv = labels[u], labels[v]
            m = lu != lv
            if not m.any():
                continue
            changed = True
            lo, hi = np.minimum(lu[m], lv[m]), np.maximum(lu[m], lv[m])
            np.minimum.at(labels, hi, lo)
            labels = compress(labels)
        if not changed:
            return labels


class DedupCluster(PipelineStep):
    type = "🫂 - DEDUP"
    name = "🔗 cluster + keep rule"

    def __init__(self, output_dir: str, config: DedupConfig | dict | None = None):
        super().__init__()
        self.layout = Layout(output_dir)
        self.config = DedupConfig.model_validate(config or {})

    def run(self, data, rank: int = 0, world_size: int = 1):
        import numpy as np
        import polars as pl

        if world_size != 1:
            raise ValueError("the cluster stage runs as a single task")
        lay = self.layout
        ranks = lay.ranks()
        counts = []
        for r in ranks:
            import pyarrow.parquet as pq

            counts.append(pq.ParquetFile(lay.docs(r)).metadata.num_rows)
        offsets = np.zeros(max(ranks, default=-1) + 2, dtype=np.int64)
        for r, c in zip(ranks, counts):
            offsets[r + 1] = c
        offsets = np.cumsum(offsets)
        n = int(offsets[-1])
        edge_files = sorted((lay.work / "edges").glob("*.npy"))

        def chunks():
            for f in edge_files:
                e = np.load(f, mmap_mode="r")
                for s in range(0, len(e), CHUNK):
                    c = np.array(e[s:s + CHUNK])
                    yield offsets[c["ra"]] + c["ia"], offsets[c["rb"]] + c["ib"]

        with self.track_time("task"):
            labels = connected_components(n, chunks)
            sizes = np.bincount(labels, minlength=n)
            in_cluster = np.flatnonzero(sizes[labels] >= 2)
        self.stat_update("documents", value=n)
        self.stat_update("clustered_documents", value=len(in_cluster))

        # Attributes of clustered documents only (the keep rule needs length/date/order).
        frames = []
        for r in ranks:
            lo, hi = offsets[r], offsets[r + 1]
            sel = in_cluster[(in_cluster >= lo) & (in_cluster < hi)]
            if len(sel) == 0:
                continue
            docs = pl.read_parquet(lay.docs(r)).with_columns(pl.lit(r, pl.UInt32).alias("rank"))
            frames.append(docs[(sel - lo).tolist()].with_columns(pl.Series("gid", sel)))
        schema = {"idx": pl.UInt32, "id": pl.String, "exact": pl.UInt64, "n_chars": pl.Int64, "n_bytes": pl.Int64,
                  "date": pl.String, "short": pl.Boolean, "rank": pl.UInt32, "gid": pl.Int64}
        df = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
        df = df.with_columns(
            pl.Series("cluster_id", labels[df["gid"].to_numpy()] if len(df) else np.empty(0, np.int64)),
        ).with_columns(pl.len().over("cluster_id").alias("cluster_size"))
        keep = self.config.keep
        if keep == "first":
            by, desc = ["cluster_id", "gid"], [False, False]
        elif keep == "longest":
            by, desc = ["cluster_id", "n_chars", "gid"], [False, True, False]
        else:  # newest: dates missing sort as oldest; ties go to the longer, then the first seen
            by, desc = ["cluster_id", "date", "n_chars", "gid"], [False, True, True, False]
        df = df.sort(by, descending=desc, nulls_last=True)
        df = df.with_columns(
            (pl.int_range(pl.len()).over("cluster_id") == 0).alias("kept"),
            pl.col("id").first().over("cluster_id").alias("kept_id"),
            pl.col("exact").first().over("cluster_id").alias("kept_exact"),
        ).with_columns(
            pl.when(pl.col("kept")).then(None)
            .when(pl.col("exact") == pl.col("kept_exact")).then(pl.lit("exact"))
            .otherwise(pl.lit("near")).alias("reason")
        ).sort("gid")

        for r in ranks:
            part = df.filter(pl.col("rank") == r).select(
                "idx", "id", "cluster_id", "cluster_size", "kept", "kept_id", "reason")
            save_parquet(lay.decisions(r), part.to_arrow())
        clusters = df.select("id", "cluster_id", "cluster_size", "kept", "reason", "kept_id")
        save_parquet(lay.clusters(), clusters.to_arrow())

        removed = df.filter(~pl.col("kept"))
        hist = df.filter(pl.col("kept")).group_by("cluster_size").len().sort("cluster_size")
        stats = {
            "documents": n,
            "clusters": int(df["kept"].sum()) if len(df) else 0,
            "clustered_documents": len(df),
            "removed_documents": len(removed),
            "removed_exact": int((removed["reason"] == "exact").sum()),
            "removed_near": int((removed["reason"] == "near").sum()),
            "removed_chars": int(removed["n_chars"].sum()),
            "removed_bytes": int(removed["n_bytes"].sum()),
            "cluster_size_histogram": {str(k): int(v) for k, v in hist.iter_rows()},
            "edges": int(sum(np.load(f, mmap_mode="r").shape[0] for f in edge_files)),
        }
        save_text(lay.cluster_stats(), json.dumps(stats, indent=2))
        return iter(())
