"""Last stage of a corpus run: collect stats, write the HTML report, then the manifest (last, atomically)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep

from .layout import Layout


def collect_dedup_stats(out: str | Path) -> dict[str, Any]:
    lay = Layout(out)
    if not lay.cluster_stats().exists():
        return {}
    stats = json.loads(lay.cluster_stats().read_text(encoding="utf-8"))
    removed_tokens = kept = 0
    for p in sorted((lay.work / "filter_stats").glob("*.json")):
        s = json.loads(p.read_text(encoding="utf-8"))
        removed_tokens += s["removed_tokens"]
        kept += s["kept_documents"]
    stats["removed_tokens"] = removed_tokens
    stats["kept_documents"] = kept
    return stats


def source_counts(out: str | Path, shard_paths: list[str]) -> dict[str, dict[str, int]]:
    import polars as pl

    if not shard_paths:
        return {}
    df = (pl.scan_parquet([str(Path(out) / p) for p in shard_paths])
          .group_by("source").agg(pl.len().alias("documents"), pl.col("n_tokens").sum().alias("tokens"))
          .sort("source").collect())
    return {r["source"]: {"documents": int(r["documents"]), "tokens": int(r["tokens"])} for r in df.iter_rows(named=True)}


class FinalizeCorpus(PipelineStep):
    """Writes ``report.html`` and ``manifest.json`` (stage ``cpt``) from the ranks' shard sidecars."""

    type = "💽 - WRITER"
    name = "📜 manifest + report"

    def __init__(self, output_dir: str, name: str, provenance: dict[str, Any], tokenizer: str | None = "qwen2.5",
                 sources: list[dict[str, Any]] | None = None, extra_stats: dict[str, Any] | None = None,
                 report: bool = True, stage: str = "cpt"):
        super().__init__()
        self.output_dir = str(output_dir)
        self.corpus_name = name
        self.provenance = provenance
        self.tokenizer = tokenizer
        self.sources = sources or []
        self.extra_stats = extra_stats or {}
        self.report = report
        self.stage = stage

    def run(self, data, rank: int = 0, world_size: int = 1):
        from corpora_manifests.models import Provenance, Source
        from corpora_manifests.tokenizer import load_tokenizer, tokenizer_info
        from curation.rejects import count_reject_reasons
        from curation.writers import finalize_manifest, read_parts

        out = Path(self.output_dir)
        shard_paths = [s["path"] for part in read_parts(out) for s in part["shards"]]
        per_source = source_counts(out, shard_paths)
        known = {s["name"]: dict(s) for s in self.sources}
        for name, counts in per_source.items():
            entry = known.setdefault(name, {"name": name})
            entry["counts"] = {**entry.get("counts", {}), **counts}
        stats = {**self.extra_stats, "rejects": count_reject_reasons(out)}
        dedup = collect_dedup_stats(out)
        if dedup:
            stats["dedup"] = dedup
        if self.report:
            from curation.report import write_report

            write_report(out, shard_paths, stats, title=self.corpus_name)
            stats["report"] = "report.html"
        finalize_manifest(out, self.corpus_name, self.stage, Provenance.model_validate(self.provenance),
                          tokenizer_info=tokenizer_info(load_tokenizer(self.tokenizer)) if self.tokenizer else None,
                          sources=[Source.model_validate(s) for s in known.values()], stats=stats)
        return iter(())
