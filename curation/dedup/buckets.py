"""Stage 2 (one task per band x hash-range partition): LSH buckets → verified duplicate edges.

Task t handles band ``t // partitions`` (the last "band" is the exact hash) and the
``t % partitions``-th slice of the 64-bit hash range. Each rank's band file is sorted by hash, so a
task memory-maps it and reads only its slice: memory is (documents / partitions) x 12 bytes.
Candidate pairs from MinHash bands are verified: the Jaccard estimated from the full signatures
(memory-mapped rows of the two documents) decides when it is clearly above or below the threshold;
in between, the exact Jaccard of the two stored n-gram sets decides (verify=exact, the default).
Exact-hash buckets need no verification.
"""
from __future__ import annotations

import itertools

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

    def _slice(self, rank_files, part: int):
        import numpy as np

        parts = self.config.bucket_partitions
        lo_h = (part << 64) // parts
        hi_h = ((part + 1) << 64) // parts
        hs, rs, js = [], [], []
        for r, path in rank_files:
            a = np.load(path, mmap_mode="r")
            if len(a) == 0:
                continue
            h = a["h"]
            lo = 0 if part == 0 else int(np.searchsorted(h, np.uint64(lo_h), side="left"))
            hi = len(a) if part == parts - 1 else int(np.searchsorted(h, np.uint64(hi_h), side="left"))
            chunk = np.array(a[lo:hi])
            hs.append(chunk["h"])
            js.append(chunk["i"])
            rs.append(np.full(len(chunk), r, dtype=np.uint32))
        if not hs:
            return None
        h, r, j = np.concatenate(hs), np.concatenate(rs), np.concatenate(js)
        order = np.lexsort((j, r, h))
        return h[order], r[order], j[order]

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

    def _verify(self, ra, ia, rb, ib):
        import numpy as np

        sig_cache = {}

        def rows(r_arr, i_arr):
            out = np.empty((len(r_arr), self.config.num_perm), dtype=np.uint32)
            for r in np.unique(r_arr):
                if r not in sig_cache:
                    sig_cache[r] = np.load(self.layout.sigs(int(r)), mmap_mode="r")
                m = r_arr == r
                out[m] = sig_cache[r][i_arr[m]]
            return out

        est = np.empty(len(ra), dtype=np.float64)
        step = 1 << 16
        for s in range(0, len(ra), step):
            sa = rows(ra[s:s + step], ia[s:s + step])
            sb = rows(rb[s:s + step], ib[s:s + step])
            est[s:s + step] = (sa == sb).mean(axis=1)
        cfg = self.config
        if cfg.verify == "estimate":
            return est >= cfg.effective_verify_threshold
        below, above = cfg.exact_band
        keep = est >= cfg.threshold + above
        unsure = np.flatnonzero((est > cfg.threshold - below) & ~keep)
        self.stat_update("exact_checks", value=len(unsure))
        grams, offs = {}, {}
        for k in unsure:
            a = self._grams(int(ra[k]), int(ia[k]), grams, offs)
            b = self._grams(int(rb[k]), int(ib[k]), grams, offs)
            keep[k] = jaccard_sorted(a, b) >= cfg.threshold
        return keep

    def _grams(self, rank: int, idx: int, grams: dict, offs: dict):
        import numpy as np

        if rank not in grams:
            path = self.layout.grams(rank)
            grams[rank] = (np.memmap(path, dtype="<u4", mode="r") if path.stat().st_size
                           else np.empty(0, dtype=np.uint32))
            offs[rank] = np.load(self.layout.gram_offsets(rank))
        o = offs[rank]
        return np.asarray(grams[rank][o[idx]:o[idx + 1]])

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
        edges = np.empty(0, dtype=EDGE_DTYPE)
        with self.track_time("task"):
            sliced = self._slice(rank_files, part)
            if sliced is not None:
                h, r, j = sliced
                a, b = self._candidates(h)
                self.stat_update("candidate_pairs", value=len(a))
                if len(a):
                    ra, ia, rb, ib = r[a], j[a], r[b], j[b]
                    if band != EXACT_BAND:
                        ok = self._verify(ra, ia, rb, ib)
                        ra, ia, rb, ib = ra[ok], ia[ok], rb[ok], ib[ok]
                    edges = np.empty(len(ra), dtype=EDGE_DTYPE)
                    edges["ra"], edges["ia"], edges["rb"], edges["ib"] = ra, ia, rb, ib
                self.stat_update("edges", value=len(edges))
        save_npy(self.layout.edges(rank), edges)
        return iter(())
