"""The console of a pipeline run: one line per stage event, the stages' own logs in the run's log
file (``<root>/pipeline.log``), a summary table at the end."""
from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def stage_logs_to(log_file: Path, verbose: bool):
    """Route python logging, loguru (datatrove) and warnings of the stages into ``log_file``."""
    if verbose:
        yield
        return
    import warnings

    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_handlers, old_level = root.handlers[:], root.level
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    old_env = {k: os.environ.get(k) for k in ("SOAES_NO_PROGRESS", "TQDM_DISABLE", "TRANSFORMERS_VERBOSITY")}
    os.environ.update(SOAES_NO_PROGRESS="1", TQDM_DISABLE="1", TRANSFORMERS_VERBOSITY="error")
    try:
        from loguru import logger

        logger.remove()
        sink = logger.add(log_file, level="INFO", enqueue=False)
    except ImportError:  # pragma: no cover - datatrove brings loguru
        logger, sink = None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(log_file, "a", encoding="utf-8") as f, _fd_redirect(f):
                yield
    finally:
        root.handlers, root.level = old_handlers, old_level
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if logger is not None:
            try:
                logger.remove(sink)
            except ValueError:
                pass
            logger.add(sys.stderr, level="WARNING")


@contextmanager
def _fd_redirect(f):
    """Children (datatrove workers, DeepSpeed) print to fds 1/2 directly: send those to the log too,
    while the console keeps a private duplicate of the terminal."""
    global CONSOLE_FILE
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    CONSOLE_FILE = os.fdopen(os.dup(saved_out), "w", buffering=1, encoding="utf-8")
    os.dup2(f.fileno(), 1)
    os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        CONSOLE_FILE.close()
        CONSOLE_FILE = None


CONSOLE_FILE = None


def _console():
    from rich.console import Console

    return Console(file=CONSOLE_FILE, soft_wrap=True) if CONSOLE_FILE is not None else Console(soft_wrap=True)


def run_with_console(pipeline_path, sets, output, until, force, quiet=False, verbose=False,
                     title: str | None = None, after=None) -> int:
    """Load, run and summarise a pipeline; returns the exit code. ``after(p, outcomes, console)``
    runs inside the log redirection (the demo writes its report there)."""
    from rich.table import Table

    from soaes.pipeline import load_pipeline, run_pipeline

    p = load_pipeline(pipeline_path, sets, root=output)
    p.root.mkdir(parents=True, exist_ok=True)
    log_file = p.root / "pipeline.log"
    t0 = time.perf_counter()
    con0 = _console()
    if not quiet:
        con0.print(f"[bold]{title or p.config.name}[/] → {p.root}   (stage logs: {log_file})")
    with stage_logs_to(log_file, verbose):
        def on_stage(event, name, detail):
            if quiet and event not in ("waiting", "blocked"):
                return
            con = _console()
            kind = p.contexts[name].spec.kind
            if event == "start":
                con.print(f"[cyan]▶[/] {name} ({kind}) …")
            elif event == "done":
                con.print(f"[green]✓[/] {name} done in {detail}")
            elif event == "skip":
                con.print(f"[green]✓[/] {name}: up to date")
            elif event == "waiting":
                con.print(f"[magenta]⏸ {name}: waiting for review[/] — {detail}")
            elif event == "blocked":
                con.print(f"[magenta]⏸[/] {name}: not run, {detail}")

        outcomes = run_pipeline(p, until=until, force=force, on_stage=on_stage)
        extra = after(p, outcomes, _console()) if after else None
    con = _console()
    table = Table("stage", "kind", "result", "seconds", title=f"{p.config.name}: {time.perf_counter() - t0:.0f} s")
    for o in outcomes:
        table.add_row(o.name, p.contexts[o.name].spec.kind, o.action, f"{o.seconds:.1f}")
    con.print(table)
    if extra:
        con.print(extra)
    return 0
