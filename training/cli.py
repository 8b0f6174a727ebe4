"""`soaes train` commands. Heavy imports stay inside commands.

Multi-GPU: launch the same command under a launcher, e.g.
``deepspeed --num_gpus 8 --no_local_rank --module soaes.cli train sft CONFIG`` or
``torchrun --nproc_per_node 8 -m soaes.cli train sft CONFIG``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(no_args_is_help=True)

_SET_HELP = "Override a config key, e.g. --set seq_len=4096 --set stages.0.learning_rate=2e-6 (repeatable)."


def _load(config: Path, kind: str, overrides: list[str]):
    from corpora_manifests.errors import UserError

    from .config import load_train_config

    cfg, text = load_train_config(config, overrides)
    if cfg.kind != kind:
        raise UserError(f"{config} is a {cfg.kind!r} config; run it with `soaes train {cfg.kind}`")
    return cfg, text


def _run(config: Path, kind: str, dry_run: bool, overrides: list[str]) -> None:
    import os

    cfg, text = _load(config, kind, overrides or [])
    if dry_run:
        from .dry_run import plan_run, print_plan

        print_plan(plan_run(cfg, int(os.environ.get("WORLD_SIZE", "1"))), typer.echo)
        return
    from .curriculum import run_training

    out = run_training(cfg, config_text=text)
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(f"done: {out} (final weights in {out / 'final'}, record in {out / 'run.json'})")


@app.command(help="Continual pre-training from CPT manifests (packed, documents isolated).")
def cpt(
    config: Path = typer.Argument(..., help="Training YAML (kind: cpt), e.g. configs/train_cpt.yaml"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print config, token/sequence counts, steps and DeepSpeed JSON; do not train."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
) -> None:
    _run(config, "cpt", dry_run, set_ or [])


@app.command(help="Curriculum SFT from SFT manifests (ChatML, assistant-only loss, packed).")
def sft(
    config: Path = typer.Argument(..., help="Training YAML (kind: sft), e.g. configs/train_sft_progressive.yaml"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print config, token/sequence counts, steps and DeepSpeed JSON; do not train."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
) -> None:
    _run(config, "sft", dry_run, set_ or [])


@app.command(help="Logit distillation of a draft model: α·τ²·KL + (1−α)·CE from stored teacher top-k "
                  "(distill_logits manifests) or an online teacher; packed, resumable, DeepSpeed like SFT.")
def distill(
    config: Path = typer.Argument(..., help="Training YAML (kind: distill), e.g. configs/distill_draft.yaml"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print config, token/sequence counts, steps and DeepSpeed JSON; do not train."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
    grid: Optional[Path] = typer.Option(None, "--grid", help="A YAML list of {name, alpha, temperature}: one run "
                                        "per point into output_dir/<name>, e.g. configs/distill_grid_table3.yaml."),
) -> None:
    if grid is None:
        _run(config, "distill", dry_run, set_ or [])
        return
    import os

    from .config import grid_configs

    cfg, text = _load(config, "distill", set_ or [])
    for point in grid_configs(cfg, grid):
        s = point.stages[0].distill
        typer.echo(f"grid point {point.output_dir}: alpha={s.alpha} temperature={s.temperature}")
        if dry_run:
            continue
        from .curriculum import run_training

        run_training(point, config_text=text)
    if not dry_run and int(os.environ.get("RANK", "0")) == 0:
        typer.echo(f"done: {len(grid_configs(cfg, grid))} runs under {cfg.output_dir}")
