"""`soaes distill`: capture a teacher's top-k next-token log-probs for offline distillation.

Training on them is ``soaes train distill CONFIG`` (a curriculum stage kind, see docs/training.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(no_args_is_help=True)


@app.command(help="Run a teacher over SFT manifests; store top-k log-probs + tail mass per supervised "
                  "position as parquet shards with a distill_logits manifest (resumable).")
def capture(
    config: Path = typer.Argument(..., help="Capture YAML, e.g. configs/distill_capture.yaml"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a config key, e.g. --set k=32 (repeatable)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output directory (overrides output_dir)."),
    force: bool = typer.Option(False, "--force", help="Replace an output directory that holds a different capture."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every shard."),
) -> None:
    import json
    import logging

    from .distill_capture import load_capture_config, run_capture

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    overrides = list(set_ or [])
    if output is not None:
        overrides.append(f"output_dir={output}")
    cfg, text = load_capture_config(config, overrides)
    out = run_capture(cfg, config_text=text, force=force, progress=not quiet)
    stats = json.loads((out / "manifest.json").read_text())["stats"]["distill"]
    thr = stats["throughput"]
    if not quiet:
        rate = f"{thr['tokens_per_s']:.0f} tokens/s" if thr["tokens_per_s"] else "nothing recomputed"
        typer.echo(f"done: {out} ({stats['positions']} positions, {stats['bytes_per_position']:.1f} B/position, "
                   f"k={stats['k']} {stats['encoding']}; {thr['shards']} shards computed at {rate}, "
                   f"{thr['kept_shards']} kept)")
