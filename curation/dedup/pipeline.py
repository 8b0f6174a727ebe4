"""`soaes curate dedup`: JSONL/parquet documents (id, text) → deduplicated CPT shards + manifest.

``run_dedup(config) -> Path`` is the Python entry point; ``DedupRunConfig`` is its YAML/CLI config.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from corpora_manifests.errors import UserError

from .config import DedupConfig, ExecutorConfig

JSONL_GLOBS = ("*.jsonl", "*.jsonl.gz", "*.jsonl.zst", "*.json")


class DedupRunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: list[str] = Field(min_length=1, description="JSONL/parquet files or directories of them")
    output: str
    name: str = "dedup"
    text_key: str = "text"
    id_key: str = "id"
    source: str | None = Field(None, description="source name for documents without metadata.source")
    tokenizer: str = "qwen2.5"
    count_tokens: bool = Field(True, description="per-document token counts (n_tokens); off only for benchmarks")
    shard_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    report: bool = True
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)


def _reader_specs(paths: list[str]) -> list[tuple[str, str, str | None]]:
    """(kind, folder, glob) per input: a file becomes its folder + its own name as the glob."""
    specs = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"input not found: {p}")
        if p.is_file():
            name = p.name
            if name.endswith(".parquet"):
                specs.append(("parquet", str(p.parent.resolve()), name))
            elif any(name.endswith(g[1:]) for g in JSONL_GLOBS):
                specs.append(("jsonl", str(p.parent.resolve()), name))
            else:
                raise UserError(f"{p}: not a .jsonl[.gz|.zst] or .parquet file")
            continue
        found = False
        if any(p.rglob("*.parquet")):
            specs.append(("parquet", str(p.resolve()), "**/*.parquet"))
            found = True
        for g in JSONL_GLOBS:
            if any(p.rglob(g)):
                specs.append(("jsonl", str(p.resolve()), f"**/{g}"))
                found = True
        if not found:
            raise UserError(f"{p}: no .jsonl or .parquet files inside")
    return specs


def make_reader_factory(paths: list[str], output_dir: str, text_key: str = "text", id_key: str = "id",
                        source: str | None = None):
    specs = _reader_specs(paths)

    def make():
        from .reader import RecordsReader

        return [RecordsReader(folder, glob, output_dir, text_key=text_key, id_key=id_key, source=source, tag=i)
                for i, (_kind, folder, glob) in enumerate(specs)]

    return make


def run_dedup(config: DedupRunConfig | dict[str, Any], config_text: str | None = None,
              command: str | None = None, force: bool = False) -> Path:
    """Run (or resume) a dedup job; returns the output directory holding manifest.json (on Slurm: once
    the jobs are submitted; the last job writes manifest.json)."""
    from corpora_manifests.provenance import make_provenance
    from curation.tokens import TokenCounter
    from curation.writers import ShardsWriter

    from .finalize import FinalizeCorpus
    from .stages import check_executor, dedup_stages, run_stages

    cfg = DedupRunConfig.model_validate(config) if isinstance(config, dict) else config
    out = Path(cfg.output)
    from corpora_manifests.runs import decide, manifest_run_check, reset_output

    check = manifest_run_check(out, cfg.model_dump(mode="json"))
    if decide(check, force, what="curate dedup"):
        return out
    if check.state == "incomplete" and not force:
        raise UserError(f"curate dedup: {out}: recorded outputs do not check out "
                        f"({'; '.join(check.problems[:2])}); rerun with --force to redo it")
    if check.state != "absent":
        reset_output(out)
    check_executor(cfg.executor)
    from corpora_manifests.tokenizer import TokenizerNotFound, load_tokenizer

    try:
        if cfg.count_tokens:
            load_tokenizer(cfg.tokenizer)
    except TokenizerNotFound as e:
        raise UserError(str(e)) from None
    source = cfg.source or Path(cfg.input[0]).name.split(".")[0]
    make_readers = make_reader_factory(cfg.input, str(out), cfg.text_key, cfg.id_key, source)
    out.mkdir(parents=True, exist_ok=True)
    prov = make_provenance(config=cfg.model_dump(mode="json"), config_text=config_text, command=command)
    tail = [TokenCounter(cfg.tokenizer)] if cfg.count_tokens else []
    tail += [ShardsWriter(out, default_source=source, tokenizer=None, target_bytes=cfg.shard_bytes)]
    finalize = FinalizeCorpus(str(out), cfg.name, prov.model_dump(mode="json"),
                              tokenizer=cfg.tokenizer if cfg.count_tokens else None,
                              report=cfg.report)
    stages = dedup_stages(out, make_readers, cfg.dedup, cfg.executor.n_tasks, tail,
                          tokenizer=cfg.tokenizer if cfg.count_tokens else None)
    # Slurm: returns once the stages and the finalize job are queued (see corpora_manifests.executor)
    run_stages(stages, cfg.executor, out, out / "dedup_work" / "logs", finalize=finalize)
    return out
