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
    from corpora_manifests.config import load_config
    from corpora_manifests.errors import UserError

    from .config import TrainConfig

    for o in overrides:
        if "=" not in o:
            raise UserError(f"override {o!r} must look like key.sub=value")
    cfg, text = load_config(config, TrainConfig, [o for o in overrides if not o.startswith("stages.")])
    stage_sets = [o for o in overrides if o.startswith("stages.")]
    if stage_sets:  # stages is a list: apply `stages.N.key=value` to the validated data and re-validate
        import yaml
        from pydantic import ValidationError

        data = cfg.model_dump()
        for o in stage_sets:
            key, value = o.split("=", 1)
            _, idx, field = key.split(".", 2)
            try:
                data["stages"][int(idx)][field] = yaml.safe_load(value)
            except (ValueError, IndexError):
                raise UserError(f"override {o!r}: no stage {idx}") from None
        try:
            cfg = TrainConfig.model_validate(data)
        except ValidationError as e:
            from corpora_manifests.config import describe_validation_error

            raise UserError(describe_validation_error(e, str(config))) from None
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
