"""`soaes pipeline run|status PIPELINE.yaml`: a whole run (curate → synth → review → filters →
train …) from one file.

The file names a run root and its stages; each stage has a kind (``soaes.pipeline.kinds``), a config
file (relative to the pipeline file), optional overrides (``set``) and ``inputs``: config keys that
receive upstream outputs (``stage`` or ``stage/<output>``). Every stage writes to
``<root>/<stage name>``, so every path derives from one root. Stages run in dependency order; a
stage whose finished outputs match its effective config is skipped ("up to date"); a stage whose
config changed is refused with the changed keys unless ``--force STAGE``; stages downstream of a
stage that was (re)done are redone. The review gate stops the run until every generated item is
decided, unless it allows auto-approval.

``<root>/.pipeline/<stage>.json`` records, per finished stage, the fingerprints of the upstream
outputs it consumed: a stage whose inputs changed since is stale. It is a record, not the proof of
being finished: that is always checked against the outputs themselves.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corpora_manifests.errors import UserError

from .kinds import REGISTRY, StageContext, StageStatus, get_kind

log = logging.getLogger("soaes.pipeline")


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    kind: str
    config: str | None = Field(None, description="the stage's YAML config, relative to the pipeline file")
    set: dict[str, Any] = Field(default_factory=dict, description="dotted config key -> value")
    inputs: dict[str, str | list[str]] = Field(
        default_factory=dict, description="dotted config key -> upstream output: 'stage' or 'stage/<output>'")
    after: list[str] = Field(default_factory=list, description="extra dependencies (stage names)")
    auto_approve: bool | Literal["demo"] = Field(
        False, description="review gate only: approve pending items automatically ('demo' labels them so)")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in REGISTRY:
            raise ValueError(f"unknown stage kind {v!r}; known: {', '.join(sorted(REGISTRY))}")
        return v

    def refs(self) -> list[str]:
        out: list[str] = []
        for v in self.inputs.values():
            out += v if isinstance(v, list) else [v]
        return out

    def depends_on(self) -> list[str]:
        deps = [r.split("/", 1)[0] for r in self.refs()] + list(self.after)
        return list(dict.fromkeys(deps))


# `--set STAGE.<field>` sets these stage fields; every other key goes to the stage's config
STAGE_FIELDS_SETTABLE = ("auto_approve",)


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    root: str = Field(description="run root: stage S writes to <root>/S (relative to the current directory)")
    stages: list[StageSpec] = Field(min_length=1)


@dataclass
class Pipeline:
    config: PipelineConfig
    path: Path
    order: list[str]
    contexts: dict[str, StageContext]

    @property
    def root(self) -> Path:
        return Path(self.config.root)


# ---- loading ---------------------------------------------------------------------------------------

def _parse_set(item: str) -> tuple[str, Any]:
    try:  # the one --set parser of the CLI convention, once it exists
        from corpora_manifests.config import parse_override

        return parse_override(item)
    except ImportError:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like stage.key=value") from None
        k, v = item.split("=", 1)
        return k.strip(), yaml.safe_load(v)


def set_dotted(data: dict[str, Any], dotted: str, value: Any, where: str = "config") -> None:
    """Set ``a.b.0.c`` in nested dicts/lists (list indices are digits); None is a value, not a no-op."""
    node: Any = data
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"{where}: {'.'.join(parts[:i]) or 'config'} has no item {part!r} (setting {dotted})")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise UserError(f"{where}: {'.'.join(parts[:i])} is not a mapping or list (setting {dotted})")


def _topo(specs: list[StageSpec]) -> list[str]:
    by_name = {s.name: s for s in specs}
    if len(by_name) != len(specs):
        raise UserError("pipeline: two stages share a name")
    for s in specs:
        for d in s.depends_on():
            if d not in by_name:
                raise UserError(f"pipeline: stage {s.name!r} refers to unknown stage {d!r}")
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str, trail: tuple[str, ...]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            raise UserError(f"pipeline: dependency cycle {' -> '.join(trail + (n,))}")
        state[n] = 1
        for d in by_name[n].depends_on():
            visit(d, trail + (n,))
        state[n] = 2
        order.append(n)

    for s in specs:  # file order among independent stages
        visit(s.name, ())
    return order


def load_pipeline(path: str | Path, sets: list[str] | None = None, root: str | Path | None = None,
                  command: str | None = None) -> Pipeline:
    """Read the pipeline file, apply ``--set stage.key=value`` (or top-level ``root=…``), resolve
    every stage's config with its wired inputs and validate them all before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pipeline file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise UserError(f"pipeline {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UserError(f"pipeline {path} must be a mapping at the top level")
    stage_sets: dict[str, list[tuple[str, Any]]] = {}
    names = {s.get("name") for s in raw.get("stages") or [] if isinstance(s, dict)}
    for item in sets or []:
        key, value = _parse_set(item)
        head, _, rest = key.partition(".")
        if head in names and rest in STAGE_FIELDS_SETTABLE:
            # a stage field (e.g. review.auto_approve), not a key of the stage's config
            next(s for s in raw["stages"] if isinstance(s, dict) and s.get("name") == head)[rest] = value
        elif head in names and rest:
            stage_sets.setdefault(head, []).append((rest, value))
        elif head in ("root", "name") and not rest:
            raw[head] = value
        else:
            raise UserError(f"--set {item!r}: expected STAGE.key=value with STAGE one of {sorted(n for n in names if n)}")
    if root is not None:
        raw["root"] = str(root)
    try:
        cfg = PipelineConfig.model_validate(raw)
    except ValidationError as e:
        from corpora_manifests.config import describe_validation_error

        raise UserError(describe_validation_error(e, str(path))) from None
    order = _topo(cfg.stages)
    specs = {s.name: s for s in cfg.stages}
    contexts: dict[str, StageContext] = {}
    rootp = Path(cfg.root)
    cmd = command or f"soaes pipeline run {path}"
    for name in order:
        spec = specs[name]
        kind = get_kind(spec.kind)
        data: dict[str, Any] = {}
        if spec.config:
            cfile = (path.parent / spec.config)
            if not cfile.is_file():
                raise UserError(f"stage {name}: config file not found: {cfile}")
            data = yaml.safe_load(cfile.read_text(encoding="utf-8")) or {}
        for k, v in spec.set.items():
            set_dotted(data, k, v, where=f"stage {name}")
        if kind.output_key:
            set_dotted(data, kind.output_key, str(rootp / name), where=f"stage {name}")
        upstream: dict[str, StageContext] = {}
        for key, refs in spec.inputs.items():
            paths = [_resolve_ref(r, contexts, name) for r in (refs if isinstance(refs, list) else [refs])]
            for r in (refs if isinstance(refs, list) else [refs]):
                upstream[r.split("/", 1)[0]] = contexts[r.split("/", 1)[0]]
            if kind.load is not None:
                set_dotted(data, key, [str(p) for p in paths] if isinstance(refs, list) else str(paths[0]),
                           where=f"stage {name}")
        for d in spec.after:
            upstream[d] = contexts[d]
        if kind.load is None and stage_sets.get(name):
            raise UserError(f"--set {name}.{stage_sets[name][0][0]}: stage {name} ({spec.kind}) has no config; "
                            f"settable: {', '.join(f'{name}.{f}' for f in STAGE_FIELDS_SETTABLE)}")
        for k, v in stage_sets.get(name, []):
            set_dotted(data, k, v, where=f"stage {name} (--set)")
        config = kind.load(data) if kind.load else None
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=True)
        contexts[name] = StageContext(name=name, spec=spec, config=config, config_text=text, upstream=upstream,
                                      root=rootp, command=f"{cmd} (stage {name})")
    return Pipeline(cfg, path, order, contexts)


def _resolve_ref(ref: str, contexts: dict[str, StageContext], where: str) -> Path:
    stage, _, sub = ref.partition("/")
    if stage not in contexts:
        raise UserError(f"stage {where}: input {ref!r} names no earlier stage")
    ctx = contexts[stage]
    outs = get_kind(ctx.spec.kind).outputs(ctx)
    if sub not in outs:
        raise UserError(f"stage {where}: stage {stage!r} has no output {sub!r} (it has: "
                        f"{', '.join(repr(k) for k in outs if k) or 'only its main output'})")
    return outs[sub]


# ---- status ----------------------------------------------------------------------------------------

def _record_path(p: Pipeline, name: str) -> Path:
    return p.root / ".pipeline" / f"{name}.json"


def _input_fingerprints(p: Pipeline, name: str) -> dict[str, str | None]:
    ctx = p.contexts[name]
    return {u: get_kind(uc.spec.kind).fingerprint(uc) for u, uc in sorted(ctx.upstream.items())}


def _write_record(p: Pipeline, name: str) -> None:
    from corpora_manifests.models import atomic_write_text

    target = _record_path(p, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps({"stage": name, "inputs": _input_fingerprints(p, name)}, indent=2))


def stage_status(p: Pipeline, name: str, deps: dict[str, StageStatus], deep: bool = False) -> StageStatus:
    ctx = p.contexts[name]
    kind = get_kind(ctx.spec.kind)
    own = kind.check(ctx, deep)
    not_done = [d for d in ctx.spec.depends_on() if deps[d].state != "done"]
    if not_done:
        if own.state in ("done", "stale"):
            return StageStatus("stale", f"upstream not done: {', '.join(not_done)}", own.changed)
        if own.state == "waiting":
            return own
        return StageStatus("pending", f"waits for {', '.join(not_done)}")
    if own.state == "done":
        rec = _record_path(p, name)
        if ctx.upstream and rec.is_file():
            recorded = json.loads(rec.read_text(encoding="utf-8")).get("inputs", {})
            now = _input_fingerprints(p, name)
            moved = [u for u in now if recorded.get(u) != now[u]]
            if moved:
                return StageStatus("stale", f"inputs changed since it ran: {', '.join(moved)}")
    return own


def pipeline_status(p: Pipeline, deep: bool = False) -> dict[str, StageStatus]:
    out: dict[str, StageStatus] = {}
    for name in p.order:
        out[name] = stage_status(p, name, out, deep)
    return out


# ---- run -------------------------------------------------------------------------------------------

@dataclass
class StageOutcome:
    name: str
    action: Literal["up to date", "ran", "waiting", "blocked"]
    seconds: float
    detail: str = ""


def _ancestors(p: Pipeline, name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo += p.contexts[n].spec.depends_on()
    return seen


def run_pipeline(p: Pipeline, until: str | None = None, force: list[str] | None = None,
                 on_stage=None) -> list[StageOutcome]:
    """Run the stages in dependency order (only ``until`` and its ancestors if given).

    ``on_stage(event, name, detail)`` is called with ``start`` / ``done`` / ``skip`` / ``waiting`` /
    ``blocked``. Returns one outcome per visited stage; a review gate that waits blocks the stages
    after it, the others still run.
    """
    import time

    force = list(force or [])
    for f in force + ([until] if until else []):
        if f not in p.contexts:
            raise UserError(f"no stage {f!r} in {p.path} (stages: {', '.join(p.order)})")
    wanted = _ancestors(p, until) if until else set(p.order)
    notify = on_stage or (lambda *a: None)
    statuses: dict[str, StageStatus] = {}
    redone: set[str] = set()
    blocked: set[str] = set()  # a waiting review gate and everything after it
    outcomes: list[StageOutcome] = []
    for name in [n for n in p.order if n in wanted]:
        ctx = p.contexts[name]
        kind = get_kind(ctx.spec.kind)
        waits_for = [d for d in ctx.spec.depends_on() if d in blocked]
        if waits_for:
            blocked.add(name)
            statuses[name] = StageStatus("pending", f"waits for {', '.join(waits_for)}")
            outcomes.append(StageOutcome(name, "blocked", 0.0, f"waits for {', '.join(waits_for)}"))
            notify("blocked", name, f"waits for {', '.join(waits_for)}")
            continue
        st = stage_status(p, name, statuses, deep=True)
        upstream_redone = [d for d in ctx.spec.depends_on() if d in redone]
        forced = name in force
        if st.state == "done" and not forced and not upstream_redone:
            statuses[name] = st
            outcomes.append(StageOutcome(name, "up to date", 0.0))
            notify("skip", name, "up to date")
            continue
        if st.changed and not forced:
            keys = ", ".join(st.changed[:12])
            raise UserError(f"stage {name}: its finished run has another config (changed: {keys}); "
                            f"run with --force {name} to redo it and the stages after it")
        notify("start", name, st.detail)
        t0 = time.perf_counter()
        # a stage whose inputs were redone (or changed) is redone from scratch, not declared up to date
        result = kind.run(ctx, forced or bool(upstream_redone) or st.detail.startswith("inputs changed"))
        dt = time.perf_counter() - t0
        if result is not None and result.state == "waiting":
            # stages that do not need the gate (e.g. CPT training) go on while annotators work
            statuses[name] = result
            blocked.add(name)
            outcomes.append(StageOutcome(name, "waiting", dt, result.detail))
            notify("waiting", name, result.detail)
            continue
        _write_record(p, name)
        statuses[name] = StageStatus("done", "ran")
        redone.add(name)
        outcomes.append(StageOutcome(name, "ran", dt))
        notify("done", name, f"{dt:.1f}s")
    return outcomes
