"""Every `soaes` command follows the one CLI convention (docs/cli.md, soaes.options.CONVENTION).

The commands are found by walking the typer app (nothing is listed here), and each one's `--help` is
rendered, so a command added later is checked without touching this file.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from soaes.cli import app
from soaes.options import CONVENTION

REPO = Path(__file__).resolve().parent.parent
EXECUTOR_GROUPS = {"curate", "filters", "synth"}  # the groups whose pipelines run on a datatrove executor
FORBIDDEN = {"--output-dir", "-s"}  # spellings the convention replaced


# typer vendors its own click (typer._click): recognise groups/arguments by behaviour, not class
def _walk(cmd, path: tuple[str, ...] = ()):
    if hasattr(cmd, "commands"):
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, (*path, name))
    else:
        yield path, cmd


COMMANDS = list(_walk(typer.main.get_command(app)))
IDS = [" ".join(p) for p, _ in COMMANDS]


def _is_arg(p) -> bool:
    return p.param_type_name == "argument"


def _name(p) -> str:
    """The parameter's convention name (`set_`, `set`, `sets` are all the --set parameter)."""
    n = p.name.rstrip("_")
    return "sets" if n == "set" else n


def _opts(cmd) -> dict:
    return {o: p for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


def _is_runner(path: tuple[str, ...], cmd) -> bool:
    """A command that runs a stage: `run`, or one whose required first argument is the config it takes
    --set for (`train sft`, `distill capture`, …). `status` commands only report on one."""
    if path[-1] == "status":
        return False
    args = [p for p in cmd.params if _is_arg(p)]
    return path[-1] == "run" or ("--set" in _opts(cmd) and bool(args) and args[0].required
                                 and args[0].name in ("config", "pipeline"))


def test_the_walk_finds_every_group():
    groups = {p[0] for p, _ in COMMANDS}
    assert {"curate", "filters", "synth", "review", "train", "manifest", "eval", "demo"} <= groups
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_command_follows_the_convention(path, cmd):
    opts = _opts(cmd)
    where = "soaes " + " ".join(path)
    assert not FORBIDDEN & set(opts), f"{where}: uses {FORBIDDEN & set(opts)} (convention: --output/-o, --set)"
    for p in cmd.params:
        # a convention parameter is spelled the convention's way, and its flags mean nothing else
        if _name(p) in CONVENTION and not _is_arg(p):  # (a positional OUTPUT directory is not the -o option)
            flags, _ = CONVENTION[_name(p)]
            assert set(flags) <= set(p.opts), f"{where}: {p.name} must be {'/'.join(flags)}, is {p.opts}"
        for name, (flags, _) in CONVENTION.items():
            if _name(p) != name and not _is_arg(p):
                clash = set(flags) & set(p.opts)
                assert not clash, f"{where}: {clash} belongs to the convention's {name}, not {p.name}"
        if p.name == "config" and not getattr(p, "hidden", False):
            assert _is_arg(p), f"{where}: the config must be positional"
        if "--config" in p.opts:
            assert p.hidden, f"{where}: --config is only a hidden deprecated alias of the positional config"
    if _is_runner(path, cmd):
        args = [p for p in cmd.params if _is_arg(p)]
        assert args, f"{where}: takes --set but no positional config"
        for name in ("output", "quiet", "verbose", "force"):
            assert set(CONVENTION[name][0]) <= set(opts), f"{where}: a run command needs {CONVENTION[name][0]}"
        if path[0] in EXECUTOR_GROUPS:
            for name in ("workers", "executor"):
                assert set(CONVENTION[name][0]) <= set(opts), f"{where}: needs {CONVENTION[name][0]}"


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_help_shows_the_shared_options(path, cmd):
    r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert r.exit_code == 0, r.output
    shown = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", r.output))
    for p in cmd.params:
        if _name(p) in CONVENTION and not _is_arg(p) and not getattr(p, "hidden", False):
            for flag in CONVENTION[_name(p)][0]:
                assert flag in shown, f"soaes {' '.join(path)} --help does not show {flag}"


def test_docs_table_lists_every_convention_option():
    doc = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, (flags, _) in CONVENTION.items():
        for flag in flags:
            assert f"`{flag}" in doc or f"/{flag}" in doc or f" {flag}" in doc, f"docs/cli.md misses {flag}"
    for code in ("0", "1", "2"):
        assert f"| {code} |" in doc


def test_a_run_that_keeps_nothing_exits_1_with_the_reason(tmp_path):
    # every fixture in tests/fixtures/broken is unreadable or too short: the run finishes, keeps 0
    p = subprocess.run([sys.executable, "-m", "soaes.cli", "curate", "extract", "tests/fixtures/broken",
                        "-o", str(tmp_path / "out"), "--set", "tokenizer=null", "-q"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 1, p.stderr[-2000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("failed: ") and "kept 0 documents" in last and "read.empty_file=" in last
    assert (tmp_path / "out" / "manifest.json").exists()  # the run itself finished: rejects are recorded
    assert "Launching pipeline" not in p.stdout + p.stderr  # datatrove's logs went to the run's log file
    assert "Launching pipeline" in (tmp_path / "out" / "logs" / "run.log").read_text(encoding="utf-8")


def test_workers_flag_runs_tasks_in_parallel(tmp_path):
    # -w 2 on a local executor: the in-process cluster stage initialises polars' thread pool, so the
    # filter stage's workers must not be forked from this process (they hung in read_parquet)
    fix = REPO / "tests" / "fixtures" / "dedup" / "docs.jsonl"
    p = subprocess.run([sys.executable, "-m", "soaes.cli", "curate", "dedup", str(fix), "-o", str(tmp_path / "o"),
                        "--tasks", "2", "-w", "2", "--set", "report=false", "--set", "count_tokens=false", "-q"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "4 removed (2 exact, 2 near) in 3 clusters" in p.stdout  # the same result as one worker
    assert sorted(x.name for x in (tmp_path / "o" / ".parts").iterdir()) == ["r00000.json", "r00001.json"]
