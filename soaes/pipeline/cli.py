"""`soaes pipeline run|status PIPELINE.yaml` (see soaes/pipeline/__init__.py)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(no_args_is_help=True, help="A whole run from one file: curate → synth → review → filters → train.")

_SET_HELP = "Override a stage's config key: --set STAGE.key=value (repeatable; dotted keys, list indices)."

STATE_STYLE = {"done": "green", "stale": "yellow", "pending": "cyan", "waiting": "magenta"}


@app.command(help="Run the pipeline's stages in dependency order; finished stages are skipped ('up to date'). "
                  "Ends with <root>/report.html: every stage's state, manifests, loss curves, review and eval.")
def run(
    pipeline: Path = typer.Argument(..., help="The pipeline YAML (e.g. configs/soaesv2.yaml).", show_default=False),
    sets: Optional[List[str]] = typer.Option(None, "--set", metavar="STAGE.KEY=VALUE", help=_SET_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run root (overrides the file's root)."),
    until: Optional[str] = typer.Option(None, "--until", help="Stop after this stage (runs it and what it needs)."),
    force: Optional[List[str]] = typer.Option(None, "--force", metavar="STAGE",
                                              help="Redo this finished stage (repeatable); the stages after it follow."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary and errors on the console."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show the stages' own logs on the console."),
) -> None:
    from soaes.pipeline.console import run_with_console

    def report(p, outcomes, console):
        from soaes.pipeline.report import write_pipeline_report

        return f"report: [bold]{write_pipeline_report(p)}[/]"

    raise typer.Exit(run_with_console(pipeline, sets or [], output, until, force or [], quiet=quiet, verbose=verbose,
                                      after=report))


@app.command(help="Show each stage: done / stale / pending / waiting for review.")
def status(
    pipeline: Path = typer.Argument(..., help="The pipeline YAML.", show_default=False),
    sets: Optional[List[str]] = typer.Option(None, "--set", metavar="STAGE.KEY=VALUE", help=_SET_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run root (overrides the file's root)."),
    deep: bool = typer.Option(False, "--deep", help="Re-hash every shard (default: sizes only)."),
) -> None:
    from rich.console import Console
    from rich.table import Table

    from soaes.pipeline import load_pipeline, pipeline_status

    p = load_pipeline(pipeline, sets, root=output)
    st = pipeline_status(p, deep=deep)
    table = Table("stage", "kind", "status", "detail", title=f"{p.config.name} — {p.root}")
    for name in p.order:
        s = st[name]
        label = "waiting for review" if s.state == "waiting" else s.state
        table.add_row(name, p.contexts[name].spec.kind, f"[{STATE_STYLE[s.state]}]{label}", s.detail)
    Console().print(table)
