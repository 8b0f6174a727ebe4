"""Stage 1 (one task per input shard): exact hash + MinHash signature + LSH band hashes per document."""
from __future__ import annotations

from datatrove.pipeline.base import PipelineStep

from .config import DedupConfig
import os

from .layout import BAND_DTYPE, EXACT_BAND, Layout, save_npy, save_parquet, tmp_path


class DedupSignature(PipelineStep):
    """Hash every document of this rank; writes docs/, sigs/ and bands/ files for the rank.

    Documents shorter than ``ngram`` characters (after normalisation) have no n-gram and no MinHash:
    they are marked ``short`` and take part in exact dedup only, never in LSH (an empty set would
    otherwise collide with every other empty set).
    """

    type = "🫂 - DEDUP"
    name = "🧮 char-ngram MinHash signature"

    def __init__(self, output_dir: str, config: DedupConfig | dict | None = None):
        super().__init__()
        self.layout = Layout(output_dir)
        self.config = DedupConfig.model_validate(config or {})

    def run(self, data, rank: int = 0, world_size: int = 1):
        import numpy as np
        import pyarrow as pa

        from .shingles import band_hashes, exact_hash, ngram_hashes, normalise_pair, signatures

        cfg = self.config
        ids, exact, n_chars, n_bytes, dates, short = [], [], [], [], [], []
        sig_parts, band_parts = [], []
        pending: list[np.ndarray] = []
        pending_chars = 0
        keep_grams = cfg.verify == "exact"
        gram_counts: list[int] = []
        # n-gram sets go straight to disk (4 B per character): memory stays independent of shard size
        grams_tmp = tmp_path(self.layout.grams(rank))
        grams_file = open(grams_tmp, "wb") if keep_grams else None

        def flush():
            nonlocal pending, pending_chars
            if not pending:
                return
            with self.track_time("batch"):
                sig = signatures(pending, cfg.num_perm, cfg.seed)
                sig_parts.append(sig)
                band_parts.append(band_hashes(sig, cfg.num_bands, cfg.rows_per_band))
            pending, pending_chars = [], 0

        for doc in data or []:
            with self.track_time():
                norm, gram_text = normalise_pair(doc.text)
                ids.append(str(doc.id))
                exact.append(exact_hash(norm))
                n_chars.append(len(doc.text))
                n_bytes.append(len(doc.text.encode("utf-8")))
                d = doc.metadata.get(cfg.date_key)
                dates.append(None if d is None else str(d))
                hashes = ngram_hashes(gram_text, cfg.ngram)
                if keep_grams:
                    g = np.unique((hashes >> np.uint64(32)).astype(np.uint32)).astype("<u4")
                    grams_file.write(g.tobytes())
                    gram_counts.append(len(g))
                short.append(len(hashes) == 0)
                pending.append(hashes)
                pending_chars += len(gram_text)
                self.stat_update("documents")
                self.stat_update("chars", value=len(gram_text))
                if short[-1]:
                    self.stat_update("short_documents")
            if pending_chars >= cfg.batch_chars:
                flush()
        flush()
        if grams_file is not None:
            grams_file.close()

        n = len(ids)
        sigs = np.concatenate(sig_parts) if sig_parts else np.zeros((0, cfg.num_perm), dtype=np.uint32)
        bands = np.concatenate(band_parts) if band_parts else np.zeros((0, cfg.num_bands), dtype=np.uint64)
        short_arr = np.array(short, dtype=bool)
        idx = np.arange(n, dtype=np.uint32)
        long_idx = idx[~short_arr]
        for b in range(cfg.num_bands):
            rec = np.empty(len(long_idx), dtype=BAND_DTYPE)
            rec["h"] = bands[long_idx, b]
            rec["i"] = long_idx
            rec.sort(order=["h", "i"])
            save_npy(self.layout.band(b, rank), rec)
        rec = np.empty(n, dtype=BAND_DTYPE)
        rec["h"] = np.array(exact, dtype=np.uint64)
        rec["i"] = idx
        rec.sort(order=["h", "i"])
        save_npy(self.layout.band(EXACT_BAND, rank), rec)
        save_npy(self.layout.sigs(rank), sigs)
        if keep_grams:
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(gram_counts, out=offsets[1:])
            os.replace(grams_tmp, self.layout.grams(rank))
            save_npy(self.layout.gram_offsets(rank), offsets)
        # The document table is written last: its presence marks the rank's signature files as complete.
        table = pa.table({
            "idx": pa.array(idx, pa.uint32()),
            "id": pa.array(ids, pa.string()),
            "exact": pa.array(np.array(exact, dtype=np.uint64), pa.uint64()),
            "n_chars": pa.array(n_chars, pa.int64()),
            "n_bytes": pa.array(n_bytes, pa.int64()),
            "date": pa.array(dates, pa.string()),
            "short": pa.array(short_arr, pa.bool_()),
        })
        save_parquet(self.layout.docs(rank), table)
        return iter(())
