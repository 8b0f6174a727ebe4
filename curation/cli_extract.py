"""Registers `soaes curate` commands. Heavy imports stay inside the command functions."""
from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command(
        "extract",
        help="Extract text from HTML/PDF/DOCX/Markdown/TXT/JSONL/parquet inputs, normalise, filter (zh quality), "
             "redact PII; write CPT shards + manifest.json, rejects/ and a stats table.",
    )
    def extract(
        inputs: Optional[List[str]] = typer.Argument(None, help="Files, directories, globs or fsspec URLs."),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="Output directory."),
        config: Optional[str] = typer.Option(None, "--config", "-c", help="YAML config (configs/curate_extract.yaml)."),
        workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Parallel datatrove tasks."),
        executor: Optional[str] = typer.Option(None, "--executor", help="local | slurm | ray"),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a config key: key.sub=value (repeatable)."),
    ) -> None:
        import json
        import sys

        from corpora_manifests.config import load_config
        from curation.pipelines.extract import ExtractConfig, run_extract

        overrides = list(set_ or [])
        # explicit flags come last so they win over --set; values are JSON, which YAML parses verbatim
        if inputs:
            overrides.append(f"inputs={json.dumps(list(inputs))}")
        if output:
            overrides.append(f"output={json.dumps(output)}")
        if workers is not None:
            overrides.append(f"executor.workers={workers}")
        if executor is not None:
            overrides.append(f"executor.kind={json.dumps(executor)}")
        cfg, text = load_config(config, ExtractConfig, overrides=overrides)
        out = run_extract(cfg, config_text=text, command=" ".join(["soaes", *sys.argv[1:]]))
        if not (out / "manifest.json").exists():  # submitted to Slurm: the last job writes the manifest
            from corpora_manifests.executor import describe_submission

            typer.echo(describe_submission(out) or f"{out}: not finished")
            return
        stats = out / "stats.md"
        if stats.exists():
            typer.echo(stats.read_text(encoding="utf-8"))
        typer.echo(f"wrote {out}")
