"""Registers `soaes curate dedup` and `soaes curate run`. Heavy imports stay inside the commands."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _summary(out: Path) -> None:
    from corpora_manifests.executor import describe_submission
    from corpora_manifests.models import load_manifest

    if not (out / "manifest.json").exists():  # submitted to Slurm: the last job writes the manifest
        typer.echo(describe_submission(out) or f"{out}: not finished")
        return

    m = load_manifest(out)
    d = m.stats.get("dedup") or {}
    typer.echo(f"{out}: {m.totals.records} documents, {m.totals.tokens} tokens in {m.totals.shards} shard(s)")
    if d:
        typer.echo(f"dedup: {d.get('removed_documents', 0)} removed ({d.get('removed_exact', 0)} exact, "
                   f"{d.get('removed_near', 0)} near) in {d.get('clusters', 0)} clusters; "
                   f"{d.get('removed_tokens', 0)} tokens, {d.get('removed_bytes', 0)} bytes removed")
    rejects = sum(sum(c.values()) for c in (m.stats.get("rejects") or {}).values())
    if rejects:
        typer.echo(f"rejects: {rejects} (see {out / 'rejects'})")
    if (out / "report.html").exists():
        typer.echo(f"report: {out / 'report.html'}")


def _overrides(flags: dict, sets: list[str]) -> dict:
    """Flag values (None = not given) plus ``--set key=value`` pairs (YAML-parsed values)."""
    import yaml

    from corpora_manifests.errors import UserError

    out = {k: v for k, v in flags.items() if v is not None}
    for s in sets:
        if "=" not in s:
            raise UserError(f"--set {s!r} must look like key.sub=value")
        k, v = s.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def register(app: typer.Typer) -> None:
    @app.command(help="Progress of a run directory (any data stage): tasks completed per stage from datatrove's "
                      "completion markers, Slurm job states, and whether manifest.json is written.")
    def status(output: Path = typer.Argument(..., help="The run's output directory")) -> None:
        from corpora_manifests.executor import format_status, run_status

        typer.echo(format_status(run_status(output)))

    @app.command(help="Exact + MinHash near-dedup (character n-grams) of JSONL/parquet documents with id, text "
                      "→ CPT shards, manifest, clusters.parquet, removed/, report.html.")
    def dedup(
        inputs: list[Path] = typer.Argument(..., help="JSONL/parquet files or directories of them (fields id, text)"),
        output: Path = typer.Option(..., "--output", "-o", help="Output directory"),
        threshold: Optional[float] = typer.Option(None, help="Jaccard threshold of a near-duplicate [0.8]"),
        ngram: Optional[int] = typer.Option(None, help="Character n-gram size [5]"),
        workers: Optional[int] = typer.Option(None, help="Tasks run at once (-1 = all) [1]"),
        tasks: Optional[int] = typer.Option(None, help="Input shards / tasks of the per-document stages [1]"),
        keep: Optional[str] = typer.Option(None, help="Which document of a cluster is kept: longest|newest|first"),
        executor: Optional[str] = typer.Option(None, help="datatrove executor: local|slurm|ray [local]"),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (keys of DedupRunConfig)"),
        set_: list[str] = typer.Option([], "--set", help="Override a config key: dedup.num_bands=20"),
    ) -> None:
        from corpora_manifests.config import load_config
        from curation.dedup.pipeline import DedupRunConfig, run_dedup

        overrides = {"input": [str(p) for p in inputs], "output": str(output), "dedup.threshold": threshold,
                     "dedup.ngram": ngram, "dedup.keep": keep, "executor.workers": workers,
                     "executor.tasks": tasks, "executor.kind": executor}
        cfg, text = load_config(config, DedupRunConfig, _overrides(overrides, set_))
        done = (Path(cfg.output) / "manifest.json").exists()
        out = run_dedup(cfg, config_text=text if config else None)
        if done:
            typer.echo(f"{out} is already complete (manifest.json exists): nothing to do")
        _summary(out)

    @app.command(help="The CPT pipeline from one YAML: extract → clean → quality filters → PII → exact + near "
                      "dedup → token counts → shards → manifest (stage cpt) → HTML report.")
    def run(
        config: Path = typer.Argument(..., help="YAML config (see configs/curate_run.yaml)"),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Override the config's output"),
        workers: Optional[int] = typer.Option(None, help="Override executor.workers"),
        set_: list[str] = typer.Option([], "--set", help="Override a config key: dedup.threshold=0.85"),
    ) -> None:
        from corpora_manifests.config import load_config
        from curation.pipelines.run import CurateRunConfig, run_curate

        flags = {"output": str(output) if output is not None else None, "executor.workers": workers}
        cfg, text = load_config(config, CurateRunConfig, _overrides(flags, set_))
        out = Path(cfg.output)
        done = (out / "manifest.json").exists()
        out = run_curate(cfg, config_text=text)
        if done:
            typer.echo(f"{out} is already complete (manifest.json exists): nothing to do")
        _summary(out)
