"""The extraction pipeline: readers → normalise → boilerplate lines → quality filter → PII → shards.

``build_extract_steps(cfg)`` returns the document steps WITHOUT the writer, so other pipelines
(``soaes curate run``: extract → dedup → tokens → shards) compose them; ``run_extract(cfg)`` adds
``ShardsWriter``, runs them on a datatrove executor (``corpora_manifests.executor``: local by default,
slurm or ray from the config)
and merges the ranks into one manifest with ``finalize_manifest``.

Output layout of ``run_extract``::

    <output>/manifest.json              written last; its presence means "finished"
    <output>/data/part-rNNNNN-NNNNN.parquet
    <output>/rejects/<stage>/NNNNN.jsonl    stage = read | quality   (one line per dropped item)
    <output>/stats.json, stats.md       counts and the drop-reason table
    <output>/report.html                length distribution, drop reasons, tokens per source (plots)
    <output>/logs/extract/              datatrove logs, stats, completion markers (resume)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from corpora_manifests.executor import ExecutorConfig, migrate_legacy_keys

from curation.normalize import NormalizeOptions
from curation.pii import PIIOptions
from curation.quality.filters import QualityThresholds
from curation.readers.files import ReaderOptions


class QualityOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    boilerplate_lines: bool = True
    boilerplate_patterns: list[str] | None = Field(None, description="None = the built-in list")
    boilerplate_max_line_chars: int = 60
    thresholds: QualityThresholds = QualityThresholds()


class ExtractConfig(BaseModel):
    """One extraction run (``configs/curate_extract.yaml``)."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[str] = Field(default_factory=list, description="files, directories, globs or fsspec URLs")
    output: str | None = None
    name: str = "cpt_extract"
    source: str | None = Field(None, description="source name for every document (default: first input's name)")
    licence: str | None = None
    readers: ReaderOptions = ReaderOptions()
    normalize: NormalizeOptions = NormalizeOptions()
    quality: QualityOptions = QualityOptions()
    pii: PIIOptions = PIIOptions()
    tokenizer: str | None = "qwen2.5"
    shard_bytes: int = Field(512 * 1024 * 1024, gt=0)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig,
                                     description="kind local|slurm|ray, workers, tasks, slurm {...}, ray {...}")

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, v):
        return migrate_legacy_keys(v)  # top-level workers/tasks/slurm/ray of older configs

    @field_validator("inputs", mode="before")
    @classmethod
    def _listify(cls, v):
        return [v] if isinstance(v, str) else v

    def source_name(self) -> str:
        if self.source:
            return self.source
        if self.inputs:
            p = Path(self.inputs[0].rstrip("/"))
            return p.stem if p.suffix else p.name
        return "unknown"


def build_extract_steps(cfg: ExtractConfig, output_dir: str | Path | None = None) -> list:
    """readers → normalise → boilerplate lines → quality filter → PII (no writer).

    With ``output_dir`` (default ``cfg.output``) unreadable files go to ``<out>/rejects/read/`` and
    quality drops to ``<out>/rejects/quality/``; without one they are only counted in stats.
    """
    from curation.normalize import ZhNormalizer
    from curation.pii import ZhPIIRedactor
    from curation.quality.boilerplate import BoilerplateLineRemover
    from curation.quality.filters import ZhQualityFilter
    from curation.readers.files import DocumentReader
    from curation.rejects import rejects_writer

    out = output_dir if output_dir is not None else cfg.output
    steps: list = [
        DocumentReader(cfg.inputs, cfg.readers, rejects_dir=str(out) if out else None, source=cfg.source_name()),
        ZhNormalizer(cfg.normalize),
    ]
    q = cfg.quality
    if q.enabled and q.boilerplate_lines:
        steps.append(BoilerplateLineRemover(q.boilerplate_patterns, q.boilerplate_max_line_chars))
    if q.enabled:
        steps.append(ZhQualityFilter(q.thresholds, exclusion_writer=rejects_writer(out, "quality") if out else None))
    if cfg.pii.enabled:
        steps.append(ZhPIIRedactor(cfg.pii))
    return steps


def _stats_table(counts: dict[str, Any], rejects: dict[str, dict[str, int]]) -> str:
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    lines += ["", "| stage | reason | count |", "|---|---|---|"]
    for stage, reasons in rejects.items():
        for r, c in sorted(reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {stage} | {r} | {c} |")
    return "\n".join(lines) + "\n"


class FinalizeExtract:
    """The merge of ranks into the manifest as a picklable call (the last, dependent Slurm job)."""

    def __init__(self, cfg: ExtractConfig, config_text: str | None, command: str | None):
        self.cfg, self.config_text, self.command = cfg, config_text, command

    def __call__(self):
        return finalize_extract(self.cfg, self.config_text, self.command)


def finalize_extract(cfg: ExtractConfig, config_text: str | None = None, command: str | None = None) -> Path:
    from corpora_manifests.models import Source, atomic_write_text
    from corpora_manifests.provenance import make_provenance
    from corpora_manifests.tokenizer import load_tokenizer, tokenizer_info
    from curation.rejects import count_reject_reasons
    from curation.report import write_report
    from curation.writers import finalize_manifest, read_parts

    out = Path(cfg.output)
    parts = read_parts(out)
    rejects = count_reject_reasons(out)
    n_rejected = sum(sum(r.values()) for r in rejects.values())
    kept = sum(p["records"] for p in parts)
    read_rejects = sum(rejects.get("read", {}).values())
    formats: dict[str, int] = {}
    for p in parts:
        for k, v in p.get("formats", {}).items():
            formats[k] = formats.get(k, 0) + v
    counts = {"documents_kept": kept, "characters_kept": sum(p["chars"] for p in parts),
              **{f"kept_{k}": v for k, v in sorted(formats.items())},
              "files_or_records_rejected_at_read": read_rejects,
              "documents_dropped_by_quality": sum(rejects.get("quality", {}).values()),
              "rejected_total": n_rejected, "ranks": len(parts)}
    stats = {"counts": counts, "rejects": rejects}
    tok_info = tokenizer_info(load_tokenizer(cfg.tokenizer)) if cfg.tokenizer else None
    sources = [Source(name=cfg.source_name(), uri=",".join(cfg.inputs), licence=cfg.licence,
                      counts={"kept": kept, "rejected": n_rejected})]
    # the hash is of the effective config (YAML + flags), so a re-run with other flags is not a "no-op"
    prov = make_provenance(cfg.model_dump(mode="json"), None, command)
    atomic_write_text(out / "stats.json", json.dumps(stats, ensure_ascii=False, indent=2))
    atomic_write_text(out / "stats.md", _stats_table(counts, rejects))
    # the HTML report (curation/report.py, shared with `curate run`) before the manifest, which comes last
    write_report(out, [s["path"] for p in parts for s in p["shards"]], stats, title=cfg.name)
    finalize_manifest(out, cfg.name, "cpt", prov, tok_info, sources, stats)
    return out


def check_inputs_and_output(cfg: ExtractConfig) -> None:
    """Fail fast, before any work, on what the user must fix: no inputs, no output, a missing input."""
    from corpora_manifests.errors import UserError
    from curation.readers.files import list_input_files

    if not cfg.inputs:
        raise UserError("no inputs: give INPUT paths or set 'inputs' in the config")
    if not cfg.output:
        raise UserError("no output directory: give --output or set 'output' in the config")
    if cfg.executor.kind == "local":
        missing = [i for i in cfg.inputs if "://" not in i and not list_input_files([i], cfg.readers.recursive)]
        if missing:
            raise UserError(f"input not found or empty: {missing[0]}")


def run_extract(cfg: ExtractConfig, config_text: str | None = None, command: str | None = None,
                force: bool = False) -> Path:
    """Run the extraction pipeline; return the output directory (with manifest.json when finished).

    ``config_text`` (the YAML as written) is accepted for symmetry with other pipelines; provenance
    echoes and hashes the effective config (YAML + overrides), which is what identifies the run.

    Re-running a finished run with the same config is a no-op; with a different config it is a
    UserError (pick another output). An interrupted run resumes: datatrove skips completed ranks.
    """
    from corpora_manifests.errors import UserError
    from corpora_manifests.runs import decide, manifest_run_check, reset_output
    from curation.writers import ShardsWriter

    check_inputs_and_output(cfg)
    out = Path(cfg.output)
    check = manifest_run_check(out, cfg.model_dump(mode="json"))
    if decide(check, force, what="curate extract"):
        return out
    if check.state == "incomplete" and not force:
        raise UserError(f"curate extract: {out}: recorded outputs do not check out "
                        f"({'; '.join(check.problems[:2])}); rerun with --force to redo it")
    if check.state != "absent":
        reset_output(out)
    out.mkdir(parents=True, exist_ok=True)
    pipeline = build_extract_steps(cfg, out) + [
        ShardsWriter(out, default_source=cfg.source_name(), tokenizer=cfg.tokenizer, target_bytes=cfg.shard_bytes)
    ]
    from corpora_manifests.executor import Stage, check_executor, run_stages

    check_executor(cfg.executor)
    # logs/extract/: datatrove logs, stats and completion markers; on Slurm the merge is the last job
    run_stages([Stage("extract", pipeline, cfg.executor.n_tasks)], cfg.executor, out, out / "logs",
               finalize=FinalizeExtract(cfg, config_text, command))
    return out
