"""`soaes train` commands. Heavy imports stay inside commands.

Multi-GPU: launch the same command under a launcher, e.g.
``deepspeed --num_gpus 8 --no_local_rank --module soaes.cli train sft CONFIG`` or
``torchrun --nproc_per_node 8 -m soaes.cli train sft CONFIG``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from soaes.options import ConfigArg, ForceOpt, OutputOpt, QuietOpt, SetOpt, VerboseOpt

app = typer.Typer(no_args_is_help=True)

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print config, token/sequence counts, steps and DeepSpeed "
                                                           "JSON; do not train.")]


def _load(config: Path, kind: str, overrides: list, output: Optional[Path] = None):
    from corpora_manifests.errors import UserError
    from soaes.options import load_cli_config

    from .config import TrainConfig

    cfg, text = load_cli_config(config, TrainConfig, overrides, output=output)
    if cfg.kind != kind:
        raise UserError(f"{config} is a {cfg.kind!r} config; run it with `soaes train {cfg.kind}`")
    return cfg, text


def _run(config: Path, kind: str, dry_run: bool, overrides: list, output: Optional[Path] = None,
         quiet: bool = False, verbose: bool = False, force: bool = False) -> None:
    import os

    cfg, text = _load(config, kind, overrides or [], output)
    if dry_run:
        from .dry_run import plan_run, print_plan

        print_plan(plan_run(cfg, int(os.environ.get("WORLD_SIZE", "1"))), typer.echo)
        return
    from soaes.console import RunConsole
    from soaes.options import call_with_force, command_line

    from .curriculum import run_training

    rank0 = int(os.environ.get("RANK", "0")) == 0
    with RunConsole(f"train {kind}", cfg.output_dir, quiet=quiet or not rank0, verbose=verbose,
                    datatrove=False) as con:
        out = call_with_force(run_training, cfg, config_text=text, command=command_line(), force=force,
                              command_name=f"train {kind}")
    if rank0:
        rows = [("output", str(out)), ("final weights", str(out / "final")), ("record", str(out / "run.json"))]
        con.summary(rows)


@app.command(help="Continual pre-training from CPT manifests (packed, documents isolated).")
def cpt(
    config: ConfigArg,
    sets: SetOpt = None,
    output: OutputOpt = None,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    force: ForceOpt = False,
) -> None:
    _run(config, "cpt", dry_run, sets or [], output, quiet, verbose, force)


@app.command(help="Curriculum SFT from SFT manifests (ChatML, assistant-only loss, packed).")
def sft(
    config: ConfigArg,
    sets: SetOpt = None,
    output: OutputOpt = None,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    force: ForceOpt = False,
) -> None:
    _run(config, "sft", dry_run, sets or [], output, quiet, verbose, force)


@app.command(help="Logit distillation of a draft model: α·τ²·KL + (1−α)·CE from stored teacher top-k "
                  "(distill_logits manifests) or an online teacher; packed, resumable, DeepSpeed like SFT.")
def distill(
    config: ConfigArg,
    sets: SetOpt = None,
    output: OutputOpt = None,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    force: ForceOpt = False,
    grid: Optional[Path] = typer.Option(None, "--grid", help="A YAML list of {name, alpha, temperature}: one run "
                                        "per point into output_dir/<name>, e.g. configs/distill_grid_table3.yaml."),
) -> None:
    if grid is None:
        _run(config, "distill", dry_run, sets or [], output, quiet, verbose, force)
        return
    import os

    from soaes.options import refuse_force

    from .config import grid_configs

    refuse_force(force, "train distill --grid")
    cfg, text = _load(config, "distill", sets or [], output)
    for point in grid_configs(cfg, grid):
        s = point.stages[0].distill
        typer.echo(f"grid point {point.output_dir}: alpha={s.alpha} temperature={s.temperature}")
        if dry_run:
            continue
        from .curriculum import run_training

        run_training(point, config_text=text)
    if not dry_run and int(os.environ.get("RANK", "0")) == 0:
        typer.echo(f"done: {len(grid_configs(cfg, grid))} runs under {cfg.output_dir}")
