"""Registers `soaes curate extract`. Heavy imports stay inside the command functions."""
from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from soaes.options import (ConfigArg, ExecutorOpt, ForceOpt, OutputOpt, QuietOpt, SetOpt, VerboseOpt, WorkersOpt,
                           DeprecatedConfigOpt)

InputsArg = Annotated[Optional[List[str]], typer.Argument(
    help="Files, directories, globs or fsspec URLs (replace the config's inputs).", show_default=False)]


def split_config(config: Optional[str], inputs: Optional[List[str]]) -> tuple[Optional[str], list[str]]:
    """``CONFIG.yaml INPUT...`` or just ``INPUT...``: the config is recognised by its .yaml/.yml suffix."""
    if config is not None and not config.lower().endswith((".yaml", ".yml")):
        return None, [config, *(inputs or [])]
    return config, list(inputs or [])


def register(app: typer.Typer) -> None:
    @app.command(
        "extract",
        help="Extract text from HTML/PDF/DOCX/Markdown/TXT/JSONL/parquet inputs, normalise, filter (zh quality), "
             "redact PII; write CPT shards + manifest.json, rejects/ and a stats table. "
             "Usage: extract [CONFIG.yaml] [INPUT...] -o DIR.",
    )
    def extract(
        config: Annotated[Optional[str], typer.Argument(
            help="The run's YAML config (configs/curate_extract.yaml); optional: a first argument not ending in "
                 ".yaml/.yml is an INPUT.", show_default=False)] = None,
        inputs: InputsArg = None,
        sets: SetOpt = None,
        output: OutputOpt = None,
        workers: WorkersOpt = None,
        executor: ExecutorOpt = None,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = False,
        force: ForceOpt = False,
        config_flag: DeprecatedConfigOpt = None,
    ) -> None:
        from pathlib import Path

        from curation.pipelines.extract import ExtractConfig, run_extract
        from soaes.console import RunConsole
        from soaes.options import call_with_force, command_line, load_cli_config, pick_config

        config, inputs = split_config(config, inputs)
        config = pick_config(config, config_flag)
        cfg, text = load_cli_config(config, ExtractConfig, sets, output=output, workers=workers, executor=executor,
                                    inputs=inputs or None)
        was_done = cfg.output is not None and (Path(cfg.output) / "manifest.json").exists()
        with RunConsole("extract", cfg.output, quiet=quiet, verbose=verbose) as con:
            out = call_with_force(run_extract, cfg, config_text=text, command=command_line(), force=force,
                                  command_name="curate extract")
        from curation.cli_dedup import _finish

        _finish(con, out, was_done)
