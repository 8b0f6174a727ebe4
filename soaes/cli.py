"""`soaes`: one sub-command group per package. Each group lives in its package's ``cli.py`` and
keeps heavy imports inside its commands, so ``soaes --help`` stays fast."""
from __future__ import annotations

import os

import typer

from corpora_manifests.cli import app as manifest_app
from curation.cli import app as curate_app
from filters.cli import app as filters_app
from synthesis.cli import app as synth_app
from synthesis.review_cli import app as review_app
from training.cli import app as train_app
from training.distill_cli import app as distill_app
from training.eval_cli import app as eval_app
from soaes.pipeline.cli import app as pipeline_app

app = typer.Typer(
    name="soaes",
    help="Chinese domain corpora for SOAEs: curate CPT data, filter and synthesise SFT data, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(curate_app, name="curate", help="CPT corpus: extract, clean, filter, redact PII, dedup, shard.")
app.add_typer(filters_app, name="filters", help="SFT stage 1: language ID, domain classifier, instruction filtering.")
app.add_typer(synth_app, name="synth", help="SFT stage 2: chunk documents, generate Q&A with GLM-4 or rules, split.")
app.add_typer(review_app, name="review", help="Human review of generated Q&A: export, import, status, resolve, the review app (serve).")
app.add_typer(train_app, name="train", help="Training from manifests: continual pre-training and curriculum SFT.")
app.add_typer(distill_app, name="distill", help="Offline distillation: capture teacher top-k log-probs (train with `soaes train distill`).")
app.add_typer(manifest_app, name="manifest", help="The manifest contract: verify, show, schema, export.")
app.add_typer(pipeline_app, name="pipeline", help="A whole run from one file: curate → synth → review → filters → train.")
app.add_typer(eval_app, name="eval", help="Evaluation: generate, ROUGE/BLEU score and compare, CMMLU/C-Eval accuracy, speculative-decoding benchmark.")


@app.command(help="Run the main job on the bundled sample (configs/demo/pipeline.yaml): every stage end to end, "
                  "offline, one HTML report.")
def demo(
    output: str = typer.Option("demo_out", "--output", "-o", help="Directory for all demo outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary and errors on the console."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show the stages' own logs on the console."),
) -> None:
    from soaes.demo import run_demo

    raise typer.Exit(run_demo(output, quiet=quiet, verbose=verbose))


@app.command(help="Print the tool version.")
def version() -> None:
    from soaes import __version__

    typer.echo(__version__)


def _strip_launcher_local_rank(argv: list[str]) -> list[str]:
    """The ``deepspeed`` launcher appends ``--local_rank=N`` to every process's arguments (unless
    given ``--no_local_rank``); it also sets LOCAL_RANK, which training reads, so the flag is dropped."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
        elif a.startswith("--local_rank=") or a.startswith("--local-rank="):
            continue
        elif a in ("--local_rank", "--local-rank") and i + 1 < len(argv):
            skip = True
        else:
            out.append(a)
    return out


def main() -> None:
    import sys

    from corpora_manifests.errors import RunFailure, UserError

    if "LOCAL_RANK" in os.environ:
        sys.argv[1:] = _strip_launcher_local_rank(sys.argv[1:])
    try:
        app()
    except UserError as e:  # a problem the user must fix: one clear line, no traceback, exit 2
        typer.echo(f"error: {e}", err=True)
        raise SystemExit(e.exit_code)
    except RunFailure as e:  # the run finished but failed verification or kept nothing: exit 1
        typer.echo(f"failed: {e}", err=True)
        raise SystemExit(e.exit_code)


if __name__ == "__main__":
    main()
