"""`soaes synth` commands. Heavy imports stay inside commands."""
from __future__ import annotations

import typer

from soaes.options import ConfigArg, ExecutorOpt, ForceOpt, OutputOpt, QuietOpt, SetOpt, VerboseOpt, WorkersOpt

app = typer.Typer(no_args_is_help=True)


@app.command(help="Run SFT stage 2: chunk documents, generate Q&A (GLM-4 or rules), validate, queue for review, "
                  "split approved + expert items 80/10/10 by document and write stage-2 and eval shards. "
                  "--workers sets the concurrent LLM requests (llm.max_concurrency).")
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
    import logging

    from corpora_manifests.models import load_manifest
    from soaes.console import RunConsole, manifest_rows, require_kept
    from soaes.options import command_line, load_cli_config

    from synthesis.config import SynthConfig
    from synthesis.pipeline import run_synthesis

    cfg, text = load_cli_config(config, SynthConfig, sets, output=output, workers=workers, executor=executor)
    logging.getLogger("synthesis").setLevel(logging.INFO)
    with RunConsole("synth", cfg.output_dir, quiet=quiet, verbose=verbose, datatrove=False) as con:
        if verbose:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        out = run_synthesis(cfg, config_text=text, command=command_line(), force=force,
                            progress=True if verbose else (False if quiet else con.bar))
    rows = []
    for stage in ("sft_stage2", "eval"):
        rows += manifest_rows(out / stage, label=stage)
    syn = load_manifest(out / "eval").stats.get("synthesis", {})
    review = syn.get("review") or {}
    rows.append(("review store", ", ".join(f"{k}={v}" for k, v in review.items())))
    pending = int(review.get("pending", 0) or 0)
    if pending:
        rows.append(("next", f"{pending} items await review: soaes review export {config} -o review.csv, then "
                              f"soaes review import {config} review.csv and run again"))
    con.summary(rows)
    if load_manifest(out / "sft_stage2").totals.records == 0 and pending:
        return  # nothing approved yet is the review gate, not a failure
    require_kept(out / "sft_stage2", "Q&A items")
