"""`soaes curate run CONFIG.yaml`: the whole CPT pipeline from one YAML.

    extract (readers → normalise → boilerplate → quality → PII, from curation.pipelines.extract)
      → staged documents (dedup_work/extracted/RANK.parquet)
      → exact + MinHash near-dedup (curation.dedup stages)
      → token counts (Qwen2.5) → CPT shards (curation.writers.ShardsWriter)
      → report.html → manifest.json (stage cpt, written last)

The config is ``ExtractConfig`` (inputs, readers, normalize, quality, pii, executor, tokenizer,
shard_bytes) plus ``dedup`` and ``report``; one executor (corpora_manifests.executor) runs every stage.
``run_curate(config) -> Path`` is the Python entry point.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep
from pydantic import Field

from curation.dedup.config import DedupConfig
from curation.pipelines.extract import ExtractConfig


class CurateRunConfig(ExtractConfig):
    name: str = "soaes_cpt"
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    report: bool = True


class StagedDocsWriter(PipelineStep):
    """Writes this rank's documents to ``DIR/RANK.parquet`` (id, text, metadata as JSON), atomically,
    so the dedup stages can read the extracted corpus twice (signatures, then filter).

    Working data, not manifest shards: no sidecar, no token counts, every metadata key kept as is,
    one file per rank even when empty (the dedup reader's ranks map one-to-one onto these files).
    Manifest shards are written by the one shard step, ``corpora_manifests.shard_step.ShardsStep``."""

    type = "💽 - WRITER"
    name = "📦 staged documents"

    def __init__(self, directory: str, batch_rows: int = 2048):
        super().__init__()
        self.directory = directory
        self.batch_rows = batch_rows

    def run(self, data, rank: int = 0, world_size: int = 1):
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("metadata", pa.string())])
        target = Path(self.directory) / f"{rank:05d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        rows: list[dict[str, Any]] = []
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            for doc in data or ():
                rows.append({"id": str(doc.id), "text": doc.text,
                             "metadata": json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True, default=str)})
                self.stat_update("documents")
                if len(rows) >= self.batch_rows:
                    w.write_table(pa.Table.from_pylist(rows, schema=schema))
                    rows = []
            # the remainder; an empty rank still writes a valid, empty file
            w.write_table(pa.Table.from_pylist(rows, schema=schema))
        os.replace(tmp, target)
        return iter(())


# Where a run lives and how many processes run it do not change what it produces.
CURATE_LOCATION_KEYS = ("output", "executor.kind", "executor.workers", "executor.slurm", "executor.ray")


def curate_effective_config(cfg: "CurateRunConfig") -> dict[str, Any]:
    from corpora_manifests.runs import effective_config

    return effective_config(cfg.model_dump(mode="json"), CURATE_LOCATION_KEYS)


def run_curate(config: CurateRunConfig | dict[str, Any], config_text: str | None = None,
               command: str | None = None, force: bool = False) -> Path:
    """Run (or resume) the CPT pipeline; returns the output directory (manifest.json when finished).

    Relative input/output paths in a config file are resolved against the current directory.
    Re-running a finished run with the same config is a no-op; with another config it is a UserError.
    """
    from corpora_manifests.errors import UserError
    from corpora_manifests.models import MANIFEST_FILENAME, load_manifest
    from corpora_manifests.provenance import make_provenance
    from corpora_manifests.runs import decide, manifest_run_check, reset_output
    from curation.dedup.finalize import FinalizeCorpus
    from curation.dedup.reader import RecordsReader
    from curation.dedup.stages import Stage, check_executor, dedup_stages, run_stages
    from curation.pipelines.extract import build_extract_steps, check_inputs_and_output
    from curation.tokens import TokenCounter
    from curation.writers import ShardsWriter

    cfg = CurateRunConfig.model_validate(config) if isinstance(config, dict) else config
    check_inputs_and_output(cfg)
    out = Path(cfg.output)
    dumped = cfg.model_dump(mode="json")
    effective = curate_effective_config(cfg)
    check = manifest_run_check(out, effective)
    if decide(check, force, what="curate"):
        return out
    if check.state == "incomplete" and not force:
        # datatrove's completion markers would skip the finished tasks: the shards cannot come back
        raise UserError(f"curate: {out}: recorded outputs do not check out ({'; '.join(check.problems[:2])}); "
                        "rerun with --force to redo the stage")
    if check.state != "absent":
        reset_output(out)
    ex = cfg.executor
    check_executor(ex)
    if cfg.tokenizer:
        from corpora_manifests.tokenizer import TokenizerNotFound, load_tokenizer

        try:
            load_tokenizer(cfg.tokenizer)
        except TokenizerNotFound as e:
            raise UserError(str(e)) from None
    out.mkdir(parents=True, exist_ok=True)
    staged = out / "dedup_work" / "extracted"
    prov = make_provenance(dumped, config_text, command, hashed=effective)

    def make_readers():
        return [RecordsReader(str(staged), "*.parquet", str(out))]

    tail = ([TokenCounter(cfg.tokenizer)] if cfg.tokenizer else []) + [
        ShardsWriter(out, default_source=cfg.source_name(), tokenizer=None, target_bytes=cfg.shard_bytes)]
    sources = [{"name": cfg.source_name(), "uri": ",".join(cfg.inputs), "licence": cfg.licence}]
    finalize = FinalizeCorpus(str(out), cfg.name, prov.model_dump(mode="json"), tokenizer=cfg.tokenizer,
                              sources=sources, report=cfg.report)
    stages = [Stage("extract", [*build_extract_steps(cfg, out), StagedDocsWriter(str(staged))], ex.n_tasks)]
    stages += dedup_stages(out, make_readers, cfg.dedup, ex.n_tasks, tail, tokenizer=cfg.tokenizer)
    # Slurm: returns once every stage and the finalize job are queued (see corpora_manifests.executor)
    run_stages(stages, ex, out, out / "dedup_work" / "logs", finalize=finalize)
    return out
