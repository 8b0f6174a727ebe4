"""The console of a `soaes` run: one rich progress display per stage, one summary table.

By default (and with ``--quiet``) everything the libraries write to stderr — datatrove's per-step
INFO logs and stats dumps, tqdm bars, Python logging, warnings, worker processes' output — goes to
the run's log file (``<output>/logs/run.log``) instead of the console: file descriptor 2 itself is
redirected, so worker processes inherit it. ``--verbose`` leaves stderr on the console.

Progress is read from what datatrove's executors write for every stage (``executor.json`` and
``completions/<rank>`` under each logging directory), so the display works unchanged for every
pipeline and executor without hooks in the pipelines. ``--quiet`` shows only the summary and errors.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable


def _stage_dirs(root: Path, depth: int = 4) -> list[Path]:
    """datatrove logging directories under ``root`` (those holding executor.json), oldest first."""
    found = []
    for d in range(depth):
        found += root.glob("/".join(["*"] * d + ["executor.json"]))
    found = [p for p in found if p.is_file()]
    found.sort(key=lambda p: p.stat().st_mtime)
    return [p.parent for p in found]


def _stage_name(logdir: Path, root: Path, title: str) -> str:
    parts = [p for p in logdir.relative_to(root).parts if p not in ("logs", "dedup_work", ".datatrove")]
    return f"{title}: {'/'.join(parts)}" if parts else title


def _tasks(logdir: Path) -> int:
    try:
        return int(json.loads((logdir / "executor.json").read_text(encoding="utf-8")).get("tasks") or 1)
    except (OSError, ValueError, TypeError, AttributeError):
        return 1


def _done(logdir: Path) -> int:
    try:
        return sum(1 for _ in (logdir / "completions").iterdir())
    except OSError:
        return 0


class RunConsole:
    """Context manager around one command's run.

    ``watch``: the output directory whose datatrove stages are shown as progress rows.
    ``log_file``: where stderr goes unless ``verbose`` (default ``<watch>/logs/run.log``).
    """

    def __init__(self, title: str, watch: str | Path | None = None, *, quiet: bool = False,
                 verbose: bool = False, log_file: str | Path | None = None, poll: float = 0.5,
                 datatrove: bool = True):
        if quiet and verbose:
            from corpora_manifests.errors import UserError

            raise UserError("--quiet and --verbose exclude each other")
        self.title = title
        self.watch = Path(watch) if watch is not None else None
        self.quiet, self.verbose = quiet, verbose
        if log_file is None and self.watch is not None:
            log_file = self.watch / "logs" / "run.log"
        self.log_file = Path(log_file) if log_file is not None else None
        self.poll = poll
        self.datatrove = datatrove  # False: no stage directories to watch; one spinner row for the run
        self._spinner: Any = None
        self._saved_fd: int | None = None
        self._created: list[Path] = []
        self._saved_stderr: Any = None
        self._log_fh: Any = None
        self._term: Any = sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: Any = None
        self._handler: logging.Handler | None = None
        self.started = time.perf_counter()

    # -- console streams -------------------------------------------------------------------------
    @property
    def console(self):
        """A rich Console on the real terminal (stderr before redirection)."""
        from rich.console import Console

        return Console(file=self._term, highlight=False)

    def _redirect(self) -> None:
        assert self.log_file is not None
        # directories this console creates, removed again if the run fails before writing anything
        self._created = [p for p in (self.log_file.parent, *self.log_file.parent.parents) if not p.exists()]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log_file, "a", encoding="utf-8", buffering=1)
        sys.stderr.flush()
        self._saved_fd = os.dup(2)
        self._saved_stderr = sys.stderr
        self._term = os.fdopen(os.dup(self._saved_fd), "w", encoding="utf-8", buffering=1)
        os.dup2(self._log_fh.fileno(), 2)
        # sys.stderr (and loguru's sinks, which hold that object) keep writing to fd 2: now the log file
        self._handler = logging.FileHandler(self.log_file, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(self._handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)

    def _restore(self) -> None:
        if self._saved_fd is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self._saved_fd = None
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler.close()
        if self._log_fh is not None:
            self._log_fh.close()
        term, self._term = self._term, sys.stderr
        try:
            term.close()
        except OSError:
            pass

    def _remove_if_unused(self) -> None:
        # a user error before any work leaves no output directory behind (only an empty log existed)
        if self.log_file is None or not self._created:
            return
        try:
            if self.log_file.exists() and self.log_file.stat().st_size == 0:
                self.log_file.unlink()
            for d in self._created:  # deepest first; rmdir refuses anything non-empty
                d.rmdir()
        except OSError:
            pass

    # -- progress --------------------------------------------------------------------------------
    def _start_progress(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TextColumn("{task.fields[unit]}"), TimeElapsedColumn(),
                                  console=self.console, transient=False,
                                  # never swap sys.stdout/stderr for rich proxies: forked datatrove workers
                                  # would inherit a proxy whose lock another thread may hold (deadlock), and
                                  # their logs would reach the terminal instead of the run's log file
                                  redirect_stdout=False, redirect_stderr=False)
        self._progress.start()
        if self.watch is None or not self.datatrove:
            self._spinner = self._progress.add_task(self.title, total=None, unit="")
            return
        self._thread = threading.Thread(target=self._watch, name="soaes-progress", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        rows: dict[Path, int] = {}
        while True:
            stop = self._stop.is_set()
            try:
                for d in _stage_dirs(self.watch):
                    total, done = _tasks(d), _done(d)
                    if d not in rows:
                        rows[d] = self._progress.add_task(_stage_name(d, self.watch, self.title), total=total, unit="tasks")
                    self._progress.update(rows[d], total=total, completed=min(done, total))
            except OSError:
                pass
            if stop:
                return
            self._stop.wait(self.poll)

    def _stop_progress(self) -> None:
        self._stop.set()
        if self._spinner is not None:
            self._progress.update(self._spinner, total=1, completed=1)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._progress is not None:
            self._progress.stop()

    def bar(self, total: int | None = None, desc: str = "", unit: str = "") -> "_Bar":
        """A tqdm-like bar (``update(n)``, ``close()``) shown as one more row of the progress display."""
        return _Bar(self._progress, total, f"{self.title}: {desc}" if desc else self.title, unit)

    # -- context ---------------------------------------------------------------------------------
    def __enter__(self) -> "RunConsole":
        if not self.verbose and self.log_file is not None:
            self._redirect()
        if not self.quiet:
            self._start_progress()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None and self._progress is not None:
                self._stop.set()
                if self._thread is not None:
                    self._thread.join(timeout=5)
                for task_id in list(self._progress.task_ids):  # a failed run leaves no progress rows behind
                    self._progress.remove_task(task_id)
                self._spinner = None
            self._stop_progress()
        finally:  # the terminal comes back whatever happened above
            self._restore()
        if exc_type is not None:
            self._remove_if_unused()
            if exc_type.__name__ not in ("UserError", "Exit") and self.log_file is not None and not self.verbose:
                print(f"the run's log: {self.log_file}", file=sys.stderr)

    # -- summary ---------------------------------------------------------------------------------
    def summary(self, rows: Iterable[tuple[str, Any]], title: str | None = None) -> None:
        """One two-column summary table on stdout (shown with --quiet too)."""
        print_summary(rows, title or self.title, elapsed=time.perf_counter() - self.started,
                      log_file=self.log_file if not self.verbose else None)


class _Bar:
    def __init__(self, progress, total: int | None, desc: str, unit: str):
        self._p = progress
        self._id = progress.add_task(desc, total=total, unit=unit) if progress is not None else None

    def update(self, n: int = 1) -> None:
        if self._id is not None:
            self._p.advance(self._id, n)

    def close(self) -> None:
        pass


def print_summary(rows: Iterable[tuple[str, Any]], title: str, elapsed: float | None = None,
                  log_file: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(str(k), str(v))
    if log_file is not None and Path(log_file).exists():
        t.add_row("log", str(log_file))
    if elapsed is not None:
        t.add_row("time", f"{elapsed:.1f} s")
    con = Console(highlight=False)
    if not con.is_terminal:  # logs and captured output: don't fold paths at 80 columns
        con = Console(highlight=False, width=160)
    con.print(t)


def manifest_rows(out: str | Path, label: str | None = None) -> list[tuple[str, Any]]:
    """Summary rows of a finished output: records, tokens, shards, what was dropped and why, the report."""
    from corpora_manifests.models import load_manifest

    out = Path(out)
    m = load_manifest(out)
    rows: list[tuple[str, Any]] = [
        ("output" if label is None else label, f"{out}  (stage {m.stage})"),
        ("records", f"{m.totals.records:,}"),
        ("tokens", f"{m.totals.tokens:,}"),
        ("shards", f"{m.totals.shards} ({m.totals.bytes:,} bytes)"),
    ]
    if m.splits:
        rows.append(("splits", ", ".join(f"{k}={v.records:,}" for k, v in m.splits.items())))
    d = m.stats.get("dedup")
    if isinstance(d, dict) and "removed_documents" in d:
        rows.append(("dedup", f"{d.get('removed_documents', 0)} removed ({d.get('removed_exact', 0)} exact, "
                              f"{d.get('removed_near', 0)} near) in {d.get('clusters', 0)} clusters"))
    drops = drop_reasons(m.stats)
    if drops:
        rows.append(("dropped", ", ".join(f"{k}={v:,}" for k, v in sorted(drops.items(), key=lambda kv: -kv[1]))))
    for name in ("report.html", "report.md"):
        if (out / name).exists():
            rows.append(("report", str(out / name)))
            break
    return rows


def drop_reasons(stats: dict[str, Any]) -> dict[str, int]:
    """Dropped-record counts by reason from any stage's manifest stats (one flat dict)."""
    out: dict[str, int] = {}

    def add(k: str, v: Any) -> None:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v:
            out[k] = out.get(k, 0) + int(v)

    for k, v in (stats.get("drop_reasons") or {}).items():
        add(k, v)
    for group, counts in (stats.get("rejects") or {}).items():
        if isinstance(counts, dict):
            for k, v in counts.items():
                add(f"{group}.{k}" if k != group else k, v)
        else:
            add(group, counts)
    d = stats.get("dedup") or {}
    if isinstance(d, dict):
        add("duplicate", d.get("removed_documents"))
    return out


def require_kept(out: str | Path, what: str = "records") -> None:
    """RunFailure (exit 1) with the reason when a finished run kept nothing."""
    from corpora_manifests.errors import RunFailure
    from corpora_manifests.models import load_manifest

    m = load_manifest(out)
    if m.totals.records > 0:
        return
    drops = drop_reasons(m.stats)
    why = ", ".join(f"{k}={v:,}" for k, v in sorted(drops.items(), key=lambda kv: -kv[1])) if drops else \
        "no input records were read"
    raise RunFailure(f"{out}: the run kept 0 {what} ({why})")


def finish_run(con, out, noun: str, extra_rows=(), was_done: bool = False) -> None:
    """Summary table of a finished output (or the submission of a Slurm run); exit 1 if it kept nothing."""
    if not (Path(out) / "manifest.json").exists():  # submitted to Slurm: the last job writes the manifest
        from corpora_manifests.executor import describe_submission

        con.summary([("submitted", describe_submission(Path(out)) or f"{out}: not finished")])
        return
    rows = [*manifest_rows(out), *extra_rows]
    if was_done:
        rows.insert(0, ("status", "already complete (manifest.json exists): nothing to do"))
    con.summary(rows)
    require_kept(out, noun)
