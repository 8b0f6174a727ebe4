"""Registers `soaes curate dedup` and `soaes curate run`. Heavy imports stay inside the commands."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from soaes.options import (ConfigArg, DeprecatedConfigOpt, ExecutorOpt, ForceOpt, OutputOpt, QuietOpt, SetOpt,
                           VerboseOpt, WorkersOpt)


def register(app: typer.Typer) -> None:
    @app.command(help="Progress of a run directory (any data stage): tasks completed per stage from datatrove's "
                      "completion markers, Slurm job states, and whether manifest.json is written.")
    def status(output: Annotated[Path, typer.Argument(help="The run's output directory", show_default=False)]) -> None:
        from corpora_manifests.executor import format_status, run_status

        typer.echo(format_status(run_status(output)))

    @app.command(help="Exact + MinHash near-dedup (character n-grams) of JSONL/parquet documents with id, text "
                      "→ CPT shards, manifest, clusters.parquet, removed/, report.html. "
                      "Usage: dedup [CONFIG.yaml] [INPUT...] -o DIR.")
    def dedup(
        config: Annotated[Optional[str], typer.Argument(
            help="The run's YAML config (keys of DedupRunConfig); optional: a first argument not ending in "
                 ".yaml/.yml is an INPUT.", show_default=False)] = None,
        inputs: Annotated[Optional[List[str]], typer.Argument(
            help="JSONL/parquet files or directories of them (fields id, text); replace the config's input.",
            show_default=False)] = None,
        sets: SetOpt = None,
        output: OutputOpt = None,
        workers: WorkersOpt = None,
        executor: ExecutorOpt = None,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
        force: ForceOpt = False,
        threshold: Annotated[Optional[float], typer.Option(help="Jaccard threshold of a near-duplicate [0.8]")] = None,
        ngram: Annotated[Optional[int], typer.Option(help="Character n-gram size [5]")] = None,
        tasks: Annotated[Optional[int], typer.Option(help="Input shards / tasks of the per-document stages [1]")] = None,
        keep: Annotated[Optional[str], typer.Option(help="Which document of a cluster is kept: longest|newest|first")] = None,
        config_flag: DeprecatedConfigOpt = None,
    ) -> None:
        from curation.cli_extract import split_config
        from curation.dedup.pipeline import DedupRunConfig, run_dedup
        from soaes.console import RunConsole
        from soaes.options import call_with_force, command_line, load_cli_config, pick_config

        config, inputs = split_config(config, inputs)
        config = pick_config(config, config_flag)
        cfg, text = load_cli_config(config, DedupRunConfig, sets, output=output, workers=workers, executor=executor,
                                    input=inputs or None, **{"dedup.threshold": threshold, "dedup.ngram": ngram,
                                                             "dedup.keep": keep, "executor.tasks": tasks})
        was_done = (Path(cfg.output) / "manifest.json").exists()
        with RunConsole("dedup", cfg.output, quiet=quiet, verbose=verbose) as con:
            out = call_with_force(run_dedup, cfg, config_text=text if config else None, command=command_line(),
                                  force=force, command_name="curate dedup")
        _finish(con, out, was_done)

    @app.command(help="The CPT pipeline from one YAML: extract → clean → quality filters → PII → exact + near "
                      "dedup → token counts → shards → manifest (stage cpt) → HTML report.")
    def run(
        config: ConfigArg,
        sets: SetOpt = None,
        output: OutputOpt = None,
        workers: WorkersOpt = None,
        executor: ExecutorOpt = None,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
        force: ForceOpt = False,
    ) -> None:
        from curation.pipelines.run import CurateRunConfig, run_curate
        from soaes.console import RunConsole
        from soaes.options import call_with_force, command_line, load_cli_config

        cfg, text = load_cli_config(config, CurateRunConfig, sets, output=output, workers=workers, executor=executor)
        was_done = (Path(cfg.output) / "manifest.json").exists()
        with RunConsole("curate", cfg.output, quiet=quiet, verbose=verbose) as con:
            out = call_with_force(run_curate, cfg, config_text=text, command=command_line(), force=force,
                                  command_name="curate run")
        _finish(con, out, was_done)


def _finish(con, out, was_done: bool = False) -> None:
    from soaes.console import finish_run

    finish_run(con, out, "documents", was_done=was_done)
