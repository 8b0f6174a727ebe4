"""Stage 2 (one task per band x hash-range partition): LSH buckets → verified duplicate edges.

Task t handles band ``t // partitions`` (the last "band" is the exact hash) and the
``t % partitions``-th slice of the 64-bit hash range. Each rank's band file is sorted by hash, so the
task merges the ranks' files window by window: it cuts its hash range into equal-width windows of
about ``bucket_window`` records, and for each reads only that window of every rank's file
(binary search) — a streaming k-way merge in batches, as datatrove's MinHash buckets stage merges
its sorted signature files. Equal hashes never straddle a window, so every bucket is whole in one
window, and memory is one window (plus the largest bucket), whatever the input size.
Candidate pairs from MinHash bands are verified: the Jaccard estimated from the full signatures
decides when it is clearly above or below the threshold; in between, the exact Jaccard of the two
stored n-gram sets decides (verify=exact, the default). Exact-hash buckets need no verification.
Signature rows and n-gram sets are read with ``pread``, not memory maps: every page a map touches
counts as the process's RSS until it is unmapped, and verification touches pages all over the
corpus-sized signature and n-gram files (that made this stage's peak RSS grow with the input).
"""
from __future__ import annotations

import itertools
import os

from datatrove.pipeline.base import PipelineStep

from .config import DedupConfig
from .layout import EDGE_DTYPE, EXACT_BAND, Layout, save_npy


def jaccard_sorted(a, b) -> float:
    """Exact Jaccard of two sorted arrays of distinct values."""
    import numpy as np

    if len(a) == 0 or len(b) == 0:
        return 1.0 if len(a) == len(b) else 0.0
    if len(a) > len(b):
        a, b = b, a
    pos = np.searchsorted(b, a)
    pos[pos == len(b)] = len(b) - 1
    inter = int(np.count_nonzero(b[pos] == a))
    return inter / (len(a) + len(b) - inter)


def bucket_tasks(config: DedupConfig) -> int:
    return (config.num_bands + 1) * config.bucket_partitions


class DedupBuckets(PipelineStep):
    type = "🫂 - DEDUP"
    name = "🪣 LSH buckets + verification"

    def __init__(self, output_dir: str, config: DedupConfig | dict | None = None):
        super().__init__()
        self.layout = Layout(output_dir)
        self.config = DedupConfig.model_validate(config or {})

    def _windows(self, rank_files, part: int):
        """Yield (hash, rank, idx) of each window of this task's hash range, sorted by (hash, rank, idx)."""
        import numpy as np

        parts = self.config.bucket_partitions
        lo_h = (part << 64) // parts
        hi_h = ((part + 1) << 64) // parts

        def pos(h, value: int) -> int:  # first index with hash >= value (value may be 2**64)
            return len(h) if value >= 1 << 64 else int(np.searchsorted(h, np.uint64(value), side="left"))

        def span(lo_v: int, hi_v: int):
            for r, path in rank_files:
                a = np.load(path, mmap_mode="r")
                if len(a):
                    h = a["h"]
                    lo, hi = pos(h, lo_v), pos(h, hi_v)
                    if hi > lo:
                        yield r, np.array(a[lo:hi])
                del a  # drop the map: the pages it touched leave the RSS

        total = sum(self._count(path, lo_h, hi_h, pos) for _, path in rank_files)
        n_win = max(1, -(-total // self.config.bucket_window))
        for w in range(n_win):
            w_lo = lo_h + (hi_h - lo_h) * w // n_win
            w_hi = lo_h + (hi_h - lo_h) * (w + 1) // n_win
            hs, rs, js = [], [], []
            for r, chunk in span(w_lo, w_hi):
                hs.append(chunk["h"])
                js.append(chunk["i"])
                rs.append(np.full(len(chunk), r, dtype=np.uint32))
            if not hs:
                continue
            h, r, j = np.concatenate(hs), np.concatenate(rs), np.concatenate(js)
            order = np.lexsort((j, r, h))
            yield h[order], r[order], j[order]

    @staticmethod
    def _count(path, lo_v: int, hi_v: int, pos) -> int:
        import numpy as np

        a = np.load(path, mmap_mode="r")
        return pos(a["h"], hi_v) - pos(a["h"], lo_v) if len(a) else 0

    def _candidates(self, h):
        """Index pairs (a, b) inside equal-hash runs: a star to the run's first member, plus the chain
        of neighbours, plus all pairs when the run is small enough to afford it."""
        import numpy as np

        n = len(h)
        if n < 2:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        new_run = np.ones(n, dtype=bool)
        new_run[1:] = h[1:] != h[:-1]
        starts = np.flatnonzero(new_run)
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
        member = np.flatnonzero(~new_run)
        a = [run_start[member]]
        b = [member]
        # chain pairs (i-1, i) not already a star pair
        chain = member[(member - 1) != run_start[member]]
        a.append(chain - 1)
        b.append(chain)
        sizes = np.diff(np.append(starts, n))
        for s, k in zip(starts[(sizes > 2) & (sizes <= self.config.max_bucket_pairs)],
                        sizes[(sizes > 2) & (sizes <= self.config.max_bucket_pairs)]):
            extra = [(s + x, s + y) for x, y in itertools.combinations(range(1, k), 2) if y != x + 1]
            if extra:
                e = np.array(extra, dtype=np.int64)
                a.append(e[:, 0])
                b.append(e[:, 1])
        return np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64)

    def _verify(self, ra, ia, rb, ib, readers: "_Readers"):
        import numpy as np

        est = np.empty(len(ra), dtype=np.float64)
        step = 1 << 14
        for s in range(0, len(ra), step):
            sa = readers.sig_rows(ra[s:s + step], ia[s:s + step])
            sb = readers.sig_rows(rb[s:s + step], ib[s:s + step])
            est[s:s + step] = (sa == sb).mean(axis=1)
        cfg = self.config
        if cfg.verify == "estimate":
            return est >= cfg.effective_verify_threshold
        below, above = cfg.exact_band
        keep = est >= cfg.threshold + above
        unsure = np.flatnonzero((est > cfg.threshold - below) & ~keep)
        self.stat_update("exact_checks", value=len(unsure))
        for k in unsure:
            a = readers.grams(int(ra[k]), int(ia[k]))
            b = readers.grams(int(rb[k]), int(ib[k]))
            keep[k] = jaccard_sorted(a, b) >= cfg.threshold
        return keep

    def run(self, data, rank: int = 0, world_size: int = 1):
        import numpy as np

        cfg = self.config
        expected = bucket_tasks(cfg)
        if world_size != expected:
            raise ValueError(f"the bucket stage needs {expected} tasks ((bands + 1) x partitions), got {world_size}")
        band_idx, part = divmod(rank, cfg.bucket_partitions)
        band = EXACT_BAND if band_idx == cfg.num_bands else band_idx
        ranks = self.layout.ranks()
        rank_files = [(r, self.layout.band(band, r)) for r in ranks]
        parts = []
        with self.track_time("task"), _Readers(self.layout, cfg.num_perm) as readers:
            for h, r, j in self._windows(rank_files, part):
                a, b = self._candidates(h)
                self.stat_update("candidate_pairs", value=len(a))
                if not len(a):
                    continue
                ra, ia, rb, ib = r[a], j[a], r[b], j[b]
                if band != EXACT_BAND:
                    ok = self._verify(ra, ia, rb, ib, readers)
                    ra, ia, rb, ib = ra[ok], ia[ok], rb[ok], ib[ok]
                e = np.empty(len(ra), dtype=EDGE_DTYPE)
                e["ra"], e["ia"], e["rb"], e["ib"] = ra, ia, rb, ib
                parts.append(e)
            # verified edges are few next to the records scanned (duplicates only): kept until the end
            edges = np.concatenate(parts) if parts else np.empty(0, dtype=EDGE_DTYPE)
            self.stat_update("edges", value=len(edges))
        save_npy(self.layout.edges(rank), edges)
        return iter(())


class _NpyFile:
    """Rows of a C-order .npy file (or a raw file of ``dtype``) read with ``os.pread``: memory holds only
    the rows asked for (a memory map would keep every touched page in the RSS until unmapped)."""

    def __init__(self, path, dtype=None):
        import numpy as np

        self.fd = os.open(path, os.O_RDONLY)
        if dtype is None:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = header(f)
                assert not fortran, path
                self.offset = f.tell()
            self.row_shape = tuple(shape[1:])
        else:
            self.offset, self.row_shape = 0, ()
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))

    def read(self, start: int, count: int):
        import numpy as np

        n = count * self.row_bytes
        buf = os.pread(self.fd, n, self.offset + start * self.row_bytes) if n else b""
        if len(buf) != n:
            raise OSError(f"short read in a dedup work file (fd {self.fd}): wanted {n} bytes, got {len(buf)}")
        return np.frombuffer(buf, dtype=self.dtype).reshape((count, *self.row_shape))

    def close(self):
        os.close(self.fd)


class _Readers:
    """Signature rows and n-gram sets of any rank, opened on first use, closed on exit."""

    def __init__(self, layout: Layout, num_perm: int):
        self.layout, self.num_perm = layout, num_perm
        self.sigs, self.gram_files, self.gram_offsets = {}, {}, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for d in (self.sigs, self.gram_files, self.gram_offsets):
            for f in d.values():
                f.close()

    def sig_rows(self, r_arr, i_arr):
        import numpy as np

        out = np.empty((len(r_arr), self.num_perm), dtype=np.uint32)
        for r in np.unique(r_arr):
            r = int(r)
            if r not in self.sigs:
                self.sigs[r] = _NpyFile(self.layout.sigs(r))
            f = self.sigs[r]
            m = np.flatnonzero(r_arr == r)
            for k in m:
                out[k] = f.read(int(i_arr[k]), 1)[0]
        return out

    def grams(self, rank: int, idx: int):
        if rank not in self.gram_files:
            self.gram_files[rank] = _NpyFile(self.layout.grams(rank), dtype="<u4")
            self.gram_offsets[rank] = _NpyFile(self.layout.gram_offsets(rank))
        lo, hi = (int(x) for x in self.gram_offsets[rank].read(idx, 2))
        return self.gram_files[rank].read(lo, hi - lo)
