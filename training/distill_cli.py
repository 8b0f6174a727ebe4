"""`soaes distill`: capture a teacher's top-k next-token log-probs for offline distillation.

Training on them is ``soaes train distill CONFIG`` (a curriculum stage kind, see docs/training.md).
"""
from __future__ import annotations

import typer

from soaes.options import ConfigArg, ForceOpt, OutputOpt, QuietOpt, SetOpt, VerboseOpt

app = typer.Typer(no_args_is_help=True)


@app.command(help="Run a teacher over SFT manifests; store top-k log-probs + tail mass per supervised "
                  "position as parquet shards with a distill_logits manifest (resumable).")
def capture(config: ConfigArg, sets: SetOpt = None, output: OutputOpt = None, quiet: QuietOpt = False,
            verbose: VerboseOpt = False, force: ForceOpt = False) -> None:
    import json
    import logging

    from soaes.options import command_line, load_cli_config

    from .distill_capture import CaptureConfig, run_capture

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    cfg, text = load_cli_config(config, CaptureConfig, sets, output=output)
    out = run_capture(cfg, config_text=text, command=command_line(), force=force, progress=not quiet)
    stats = json.loads((out / "manifest.json").read_text())["stats"]["distill"]
    thr = stats["throughput"]
    rate = f"{thr['tokens_per_s']:.0f} tokens/s" if thr["tokens_per_s"] else "nothing recomputed"
    typer.echo(f"done: {out} ({stats['positions']} positions, {stats['bytes_per_position']:.1f} B/position, "
               f"k={stats['k']} {stats['encoding']}; {thr['shards']} shards computed at {rate}, "
               f"{thr['kept_shards']} kept)")
