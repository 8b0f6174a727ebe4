"""The one command-line convention of `soaes` (table in docs/cli.md), shared by every command.

Commands declare their parameters with the aliases below, so the same option always has the same
name, short flag and help text::

    def run(config: ConfigArg, sets: SetOpt = None, output: OutputOpt = None, workers: WorkersOpt = None,
            executor: ExecutorOpt = None, quiet: QuietOpt = False, verbose: VerboseOpt = False,
            force: ForceOpt = False): ...
        cfg, text = load_cli_config(config, MyConfig, sets, output=output, workers=workers, executor=executor)

and ONE override parser turns ``--set key=value`` into config values (OmegaConf's dotlist grammar,
merged into the YAML, validated by the command's pydantic model; see corpora_manifests.config).
The flags map onto whatever keys the config model has (``output`` or ``output_dir``;
``executor.kind``/``executor.workers`` or the flat ``executor``/``workers``), so the convention holds
while the executor schemas are being unified. This module imports only typer at import time:
``soaes --help`` must stay fast.
"""
from __future__ import annotations

import enum
import typing
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from corpora_manifests.config import Override, apply_overrides, load_config, parse_override  # noqa: F401 (re-exported)
from corpora_manifests.errors import RunFailure, UserError  # noqa: F401 (re-exported)


class ExecutorKind(str, enum.Enum):
    local = "local"
    slurm = "slurm"
    ray = "ray"


SET_HELP = ("Override a config key: --set dedup.threshold=0.85 (repeatable; dotted keys, list indices like "
            "stages.1.learning_rate=2e-6; values: numbers, true/false, null, lists \\[a, b], 'quoted strings').")

# Parameter types of the convention. Use them as annotations: `config: ConfigArg`, `sets: SetOpt = None`.
ConfigArg = Annotated[Path, typer.Argument(help="The run's YAML config.", show_default=False)]
OptionalConfigArg = Annotated[Optional[Path], typer.Argument(help="The run's YAML config (optional).",
                                                             show_default=False)]
SetOpt = Annotated[Optional[List[str]], typer.Option("--set", metavar="KEY=VALUE", help=SET_HELP, show_default=False)]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Output directory (overrides the config's).",
                                                   show_default=False)]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", "-w", help="Tasks/processes run at once.",
                                                   show_default=False)]
ExecutorOpt = Annotated[Optional[ExecutorKind], typer.Option(
    "--executor", help="Where the pipeline runs: local | slurm | ray (overrides executor.kind).",
    case_sensitive=False, show_default=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary and errors on the console.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Also show the per-step logs on the console.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo a finished run instead of skipping or refusing it.")]
# Hidden, deprecated spelling kept for scripts written before the convention: --config FILE.
DeprecatedConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", hidden=True,
                                                             help="Deprecated: pass the config positionally.")]

# The convention as data: docs/cli.md and tests/test_cli_convention.py read it.
# option -> (the flags every command with that parameter must declare, meaning)
CONVENTION: dict[str, tuple[tuple[str, ...], str]] = {
    "config": ((), "the run's YAML config, positional (`soaes X run CONFIG.yaml`)"),
    "sets": (("--set",), "override a config key: `--set key.sub=value` (repeatable)"),
    "output": (("--output", "-o"), "output directory (overrides the config's output/output_dir)"),
    "workers": (("--workers", "-w"), "tasks/processes run at once"),
    "executor": (("--executor",), "local | slurm | ray (executor.kind)"),
    "quiet": (("--quiet", "-q"), "only the summary table and errors on the console"),
    "verbose": (("--verbose", "-v"), "per-step logs on the console too (always in the run's log file)"),
    "force": (("--force",), "redo a finished run"),
}


def _unwrap(annotation: Any) -> Any:
    """``Optional[X]`` / ``X | None`` -> X; anything else unchanged."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    from pydantic import BaseModel

    a = _unwrap(annotation)
    return isinstance(a, type) and issubclass(a, BaseModel)


def _sub_model(model: Any, name: str) -> Any:
    f = model.model_fields.get(name)
    return _unwrap(f.annotation) if f is not None and _is_model(f.annotation) else None


def output_key(model: Any) -> str:
    """The config key `-o/--output` sets: ``output`` or ``output_dir``, whichever is a path field."""
    for name in ("output", "output_dir"):
        f = model.model_fields.get(name)
        if f is not None and not _is_model(f.annotation):
            return name
    raise UserError(f"{model.__name__} has no output setting; --output does not apply")


def workers_key(model: Any) -> str:
    ex = _sub_model(model, "executor")
    if ex is not None and "workers" in ex.model_fields:
        return "executor.workers"
    if "workers" in model.model_fields:
        return "workers"
    llm = _sub_model(model, "llm")
    if llm is not None and "max_concurrency" in llm.model_fields:
        return "llm.max_concurrency"  # synthesis: concurrent LLM requests are its workers
    raise UserError(f"{model.__name__} has no workers setting; --workers does not apply")


def executor_key(model: Any) -> str | None:
    """``executor.kind`` for the shared schema, ``executor`` for a flat string, ``<section>.executor.kind``
    when one section runs on an executor (synth: ``chunking.executor``); None: runs in-process."""
    if _sub_model(model, "executor") is not None:
        return "executor.kind"
    if "executor" in model.model_fields:
        return "executor"
    for name in model.model_fields:
        sub = _sub_model(model, name)
        if sub is not None and _sub_model(sub, "executor") is not None:
            return f"{name}.executor.kind"
    return None


def flag_overrides(model: Any, *, output: Path | str | None = None, workers: int | None = None,
                   executor: ExecutorKind | str | None = None, **keys: Any) -> list[Override]:
    """The convention's flags as (key, value) overrides for ``model``; None means "not given".

    ``keys`` maps further config keys to flag values (e.g. ``**{"dedup.threshold": threshold}``).
    """
    out: list[Override] = []
    if output is not None:
        out.append((output_key(model), str(output)))
    if workers is not None:
        out.append((workers_key(model), workers))
    if executor is not None:
        kind = executor.value if isinstance(executor, ExecutorKind) else str(executor)
        key = executor_key(model)
        if key is None:
            if kind != "local":
                raise UserError(f"{model.__name__} runs in this process; --executor {kind} does not apply")
        else:
            out.append((key, kind))
    out.extend((k, v) for k, v in keys.items() if v is not None)
    return out


def load_cli_config(config: Path | str | None, model: Any, sets: list[str] | None = None, *,
                    output: Path | str | None = None, workers: int | None = None,
                    executor: ExecutorKind | str | None = None, base: dict[str, Any] | None = None,
                    **keys: Any) -> tuple[Any, str]:
    """YAML + ``--set`` overrides + the convention's flags (flags win) -> (validated model, config text)."""
    overrides: list[Override] = list(sets or [])
    overrides += flag_overrides(model, output=output, workers=workers, executor=executor, **keys)
    return load_config(config, model, overrides, base=base)


def pick_config(positional: Path | None, deprecated: Path | None) -> Path | None:
    """The positional config, or the hidden deprecated ``--config`` (never both)."""
    if positional is not None and deprecated is not None:
        raise UserError("pass the config once: positionally (--config is deprecated)")
    return positional if positional is not None else deprecated


def command_line() -> str:
    """The command as typed, for provenance."""
    import sys

    return " ".join(["soaes", *sys.argv[1:]])


def refuse_force(force: bool, command: str) -> None:
    """``--force`` on a stage whose finished-run handling cannot redo a run yet: say so, don't ignore it."""
    if force:
        raise UserError(f"--force is not supported by `soaes {command}` yet; delete the output directory to redo the run")


def call_with_force(fn, *args, force: bool, command_name: str, **kwargs):
    """Call a stage's run function, passing ``force`` when it accepts one (else refuse --force)."""
    import inspect

    if "force" in inspect.signature(fn).parameters:
        return fn(*args, force=force, **kwargs)
    refuse_force(force, command_name)
    return fn(*args, **kwargs)
