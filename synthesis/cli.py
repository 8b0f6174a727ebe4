"""`soaes synth` commands. Heavy imports stay inside commands."""
from __future__ import annotations

from typing import List, Optional

import typer

app = typer.Typer(no_args_is_help=True)


@app.command(help="Run SFT stage 2: chunk documents, generate Q&A (GLM-4 or rules), validate, queue for review, "
                  "split approved + expert items 80/10/10 by document and write stage-2 and eval shards.")
def run(
    config: str = typer.Argument(..., help="YAML config (see configs/synth_stage2.yaml)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", "-s", help="Override a config key: key.sub=value."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", "-o", help="Override output_dir."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the run looks finished."),
) -> None:
    import logging
    import sys

    from synthesis.pipeline import load_synth_config, run_synthesis

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = list(set_ or [])
    if output_dir:
        overrides.append(f"output_dir={output_dir}")
    cfg, text = load_synth_config(config, overrides)
    out = run_synthesis(cfg, config_text=text, command=" ".join(["soaes", *sys.argv[1:]]), force=force)
    from corpora_manifests.models import load_manifest

    for stage in ("sft_stage2", "eval"):
        m = load_manifest(out / stage)
        splits = ", ".join(f"{k}={v.records}" for k, v in m.splits.items())
        typer.echo(f"{stage}: {m.totals.records} records ({splits}) -> {out / stage}")
    syn = m.stats.get("synthesis", {})
    typer.echo(f"review store: {syn.get('review')}")
