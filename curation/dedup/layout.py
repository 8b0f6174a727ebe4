"""Where each dedup stage puts its files, and atomic writers for them.

``<out>/dedup_work/`` holds the intermediate files; each is written to a temporary name and
renamed, so a task killed half-way leaves nothing that looks finished and datatrove re-runs it.

    dedup_work/docs/RANK.parquet         per input document: idx, id, exact hash, chars, bytes, date, short
    dedup_work/sigs/RANK.npy             (docs, num_perm) uint32 MinHash signatures (memory-mapped later)
    dedup_work/grams/RANK.u32 (+.offsets.npy) each document's sorted distinct 32-bit n-gram hashes (verify=exact)
    dedup_work/bands/BAND/RANK.npy       (band hash, idx) sorted by hash; BAND "exact" holds the exact hash
    dedup_work/edges/TASK.npy            verified duplicate edges (rank_a, idx_a, rank_b, idx_b)
    dedup_work/decisions/RANK.parquet    per clustered document: cluster id/size, kept, reason
    <out>/clusters.parquet               id, cluster_id, cluster_size, kept for every clustered document
    <out>/removed/RANK.parquet           removed documents with their cluster id and the kept id
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

EDGE_DTYPE = np.dtype([("ra", "<u4"), ("ia", "<u4"), ("rb", "<u4"), ("ib", "<u4")])
BAND_DTYPE = np.dtype([("h", "<u8"), ("i", "<u4")])
EXACT_BAND = "exact"


class Layout:
    def __init__(self, out_dir: str | os.PathLike):
        self.out = Path(out_dir)
        self.work = self.out / "dedup_work"

    def docs(self, rank: int) -> Path:
        return self.work / "docs" / f"{rank:05d}.parquet"

    def sigs(self, rank: int) -> Path:
        return self.work / "sigs" / f"{rank:05d}.npy"

    def grams(self, rank: int) -> Path:
        return self.work / "grams" / f"{rank:05d}.u32"  # raw little-endian uint32, streamed while hashing

    def gram_offsets(self, rank: int) -> Path:
        return self.work / "grams" / f"{rank:05d}.offsets.npy"

    def band(self, band: int | str, rank: int) -> Path:
        name = band if isinstance(band, str) else f"{band:03d}"
        return self.work / "bands" / name / f"{rank:05d}.npy"

    def edges(self, task: int) -> Path:
        return self.work / "edges" / f"{task:05d}.npy"

    def decisions(self, rank: int) -> Path:
        return self.work / "decisions" / f"{rank:05d}.parquet"

    def cluster_stats(self) -> Path:
        return self.work / "cluster_stats.json"

    def clusters(self) -> Path:
        return self.out / "clusters.parquet"

    def removed(self, rank: int) -> Path:
        return self.out / "removed" / f"{rank:05d}.parquet"

    def filter_stats(self, rank: int) -> Path:
        return self.work / "filter_stats" / f"{rank:05d}.json"

    def ranks(self) -> list[int]:
        """Ranks of the signature stage, from its per-rank document tables."""
        return sorted(int(p.stem) for p in (self.work / "docs").glob("*.parquet"))


def tmp_path(path: Path) -> Path:
    return _tmp(path)


def _tmp(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def save_npy(path: Path, array: np.ndarray) -> None:
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    os.replace(tmp, path)


def save_parquet(path: Path, table) -> None:
    import pyarrow.parquet as pq

    tmp = _tmp(path)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def save_text(path: Path, text: str) -> None:
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
