"""The stage registry of `soaes pipeline`: one ``StageKind`` per kind of stage, keyed by name.

A kind says which pydantic model validates its config, which key holds its output directory
(the pipeline sets it to ``<root>/<stage name>``), what it produces (named outputs other stages
reference as ``stage`` or ``stage/<output>``), how to check a previous run (the shared
finished-run policy, ``corpora_manifests.runs``) and how to run it. New kinds (distill capture,
eval, …) register with ``register(StageKind(...))`` from their own package; see
docs/ARCHITECTURE.md, "Pipeline stages".
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from corpora_manifests.errors import UserError

Status = Literal["done", "stale", "pending", "waiting"]


@dataclass
class StageStatus:
    state: Status
    detail: str = ""
    changed: list[str] = field(default_factory=list)  # config keys that differ from the finished run


@dataclass
class StageContext:
    """What a kind's functions get: the stage spec, its validated config, upstream contexts."""

    name: str
    spec: Any                      # soaes.pipeline.StageSpec
    config: Any                    # the kind's pydantic config (None for config-less kinds)
    config_text: str
    upstream: dict[str, "StageContext"]
    root: Path
    command: str

    @property
    def out(self) -> Path:
        return self.root / self.name


@dataclass
class StageKind:
    name: str
    description: str
    load: Callable[[dict[str, Any]], Any] | None      # raw dict -> validated config (None: no config)
    output_key: str | None                            # dotted config key of the output directory
    outputs: Callable[[StageContext], dict[str, Path]]  # "" = the stage's main output
    check: Callable[[StageContext, bool], StageStatus]  # (ctx, deep) -> status of a previous run
    run: Callable[[StageContext, bool], StageStatus | None]  # (ctx, force) -> None, or "waiting"
    fingerprint: Callable[[StageContext], str | None] = lambda ctx: _default_fingerprint(ctx)


REGISTRY: dict[str, StageKind] = {}


def register(kind: StageKind) -> StageKind:
    REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> StageKind:
    if name not in REGISTRY:
        raise UserError(f"unknown stage kind {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def _default_fingerprint(ctx: StageContext) -> str | None:
    """What downstream stages record of this stage's result: the sha256 of its main record file."""
    kind = get_kind(ctx.spec.kind)
    main = kind.outputs(ctx).get("")
    for name in ("manifest.json", "run.json"):
        p = Path(main) / name if main else None
        if p is not None and p.is_file():
            return hashlib.sha256(p.read_bytes()).hexdigest()
    return None


def _validated(model, data: dict[str, Any], where: str):
    from pydantic import ValidationError

    from corpora_manifests.config import describe_validation_error

    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, where)) from None


def _from_check(check) -> StageStatus:
    return {
        "absent": StageStatus("pending", "not run yet"),
        "up_to_date": StageStatus("done", "up to date"),
        "changed": StageStatus("stale", "config changed: " + ", ".join(check.changed[:8]), check.changed),
        "incomplete": StageStatus("stale", "outputs do not check out: " + "; ".join(check.problems[:2])),
    }[check.state]


# ---- curate ----------------------------------------------------------------------------------------

def _curate_load(data):
    from curation.pipelines.run import CurateRunConfig

    return _validated(CurateRunConfig, data, "(stage curate)")


def _curate_check(ctx: StageContext, deep: bool) -> StageStatus:
    from corpora_manifests.runs import manifest_run_check
    from curation.pipelines.run import curate_effective_config

    return _from_check(manifest_run_check(ctx.out, curate_effective_config(ctx.config), deep=deep))


def _curate_run(ctx: StageContext, force: bool):
    from curation.pipelines.run import run_curate

    run_curate(ctx.config, config_text=ctx.config_text, command=ctx.command, force=force)


register(StageKind("curate", "CPT corpus (soaes curate run): one manifest, stage cpt", _curate_load, "output",
                   lambda ctx: {"": ctx.out}, _curate_check, _curate_run))


# ---- filters ----------------------------------------------------------------------------------------

def _filters_load(data):
    from filters.config import FiltersConfig

    return _validated(FiltersConfig, data, "(stage filters)")


def _filters_check(ctx: StageContext, deep: bool) -> StageStatus:
    from corpora_manifests.runs import effective_config, manifest_run_check
    from filters.pipeline import FILTERS_LOCATION_KEYS

    eff = effective_config(ctx.config.model_dump(mode="json"), FILTERS_LOCATION_KEYS)
    return _from_check(manifest_run_check(ctx.out, eff, deep=deep))


def _filters_run(ctx: StageContext, force: bool):
    from filters.pipeline import run_filters

    run_filters(ctx.config, config_text=ctx.config_text, command=ctx.command, force=force)


register(StageKind("filters", "SFT stage 1 (soaes filters run): one manifest, stage sft_stage1", _filters_load,
                   "output", lambda ctx: {"": ctx.out}, _filters_check, _filters_run))


# ---- synth ------------------------------------------------------------------------------------------

def _synth_load(data):
    from synthesis.config import SynthConfig

    return _validated(SynthConfig, data, "(stage synth)").resolve(Path.cwd())


def _synth_outputs(ctx: StageContext) -> dict[str, Path]:
    out = Path(ctx.config.output_dir)
    return {"": out / "sft_stage2", "sft_stage2": out / "sft_stage2", "eval": out / "eval", "dir": out}


def _synth_check(ctx: StageContext, deep: bool) -> StageStatus:
    from corpora_manifests.runs import manifest_run_check
    from synthesis.pipeline import synth_effective_config

    outs = _synth_outputs(ctx)
    return _from_check(manifest_run_check(outs["dir"], synth_effective_config(ctx.config), deep=deep,
                                          manifest_dirs=[outs["sft_stage2"], outs["eval"]]))


def _synth_run(ctx: StageContext, force: bool):
    from synthesis.pipeline import run_synthesis

    run_synthesis(ctx.config, config_text=ctx.config_text, command=ctx.command, force=force, progress=False)


register(StageKind("synth", "SFT stage 2 + eval (soaes synth run): manifests sft_stage2 and eval, review store",
                   _synth_load, "output_dir", _synth_outputs, _synth_check, _synth_run))


# ---- review gate ------------------------------------------------------------------------------------

DEMO_ANNOTATOR = "demo-auto-approval"
DEMO_COMMENT = "soaes demo: approved automatically, NOT reviewed by a person"


def _review_synth(ctx: StageContext) -> StageContext:
    synths = [u for u in ctx.upstream.values() if u.spec.kind == "synth"]
    if len(synths) != 1:
        raise UserError(f"review stage {ctx.name!r} must depend on exactly one synth stage (inputs: {{synth: NAME}})")
    return synths[0]


def _pending(synth: StageContext) -> int:
    from synthesis.store import ReviewStore

    path = synth.config.store_path
    if not Path(path).exists():
        return -1
    with ReviewStore(path, readonly=True) as store:
        return store.status_counts().get("pending", 0)


def _review_waiting(ctx: StageContext, synth: StageContext, n: int) -> StageStatus:
    store = synth.config.store_path
    return StageStatus("waiting", (
        f"{n} item(s) await review in {store}. Export them: soaes review export review.csv --store {store} ; "
        f"annotate (accept/edit/reject), then: soaes review import review.csv --store {store} ; "
        f"and run the pipeline again"))


def _review_check(ctx: StageContext, deep: bool) -> StageStatus:
    synth = _review_synth(ctx)
    n = _pending(synth)
    if n < 0:
        return StageStatus("pending", "synthesis has not run yet")
    if n > 0 and not ctx.spec.auto_approve:
        return _review_waiting(ctx, synth, n)
    if n > 0:
        return StageStatus("pending", f"{n} item(s) to approve automatically ({ctx.spec.auto_approve})")
    # every item is decided: the synth manifests must hold exactly those decisions
    from synthesis.pipeline import _finished, _run_fingerprint
    from synthesis.store import ReviewStore

    with ReviewStore(synth.config.store_path, readonly=True) as store:
        fp = _run_fingerprint(synth.config, synth.config_text, store)
    if not _finished(Path(synth.config.output_dir), fp):
        return StageStatus("pending", "decisions not yet built into the SFT stage-2/eval manifests")
    return StageStatus("done", "every item decided and built")


def _review_run(ctx: StageContext, force: bool):
    synth = _review_synth(ctx)
    n = _pending(synth)
    if n > 0 and ctx.spec.auto_approve:
        from synthesis.store import ReviewStore

        demo = ctx.spec.auto_approve == "demo"
        annotator = DEMO_ANNOTATOR if demo else "pipeline-auto-approval"
        comment = DEMO_COMMENT if demo else f"auto_approve in pipeline stage {ctx.name}"
        with ReviewStore(synth.config.store_path) as store, store.batch():
            for s in store.list_pending():
                store.record_decision(s.item.item_id, "accept", annotator, channel="auto", comment=comment)
        n = 0
    if n > 0:
        return _review_waiting(ctx, synth, n)
    from synthesis.pipeline import run_synthesis

    # rebuilds the sft_stage2/eval manifests from the decisions (a no-op when they already match)
    run_synthesis(synth.config, config_text=synth.config_text, command=ctx.command, progress=False)
    return None


def _review_fingerprint(ctx: StageContext) -> str | None:
    p = _synth_outputs(_review_synth(ctx))[""] / "manifest.json"
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


register(StageKind("review", "review gate: stops until every generated item is decided (or auto-approves)",
                   None, None, lambda ctx: _synth_outputs(_review_synth(ctx)), _review_check, _review_run,
                   _review_fingerprint))


# ---- train ------------------------------------------------------------------------------------------

def _train_load(data):
    from training.config import TrainConfig

    return _validated(TrainConfig, data, "(stage train)")


def _train_check(ctx: StageContext, deep: bool) -> StageStatus:
    from training.curriculum import train_run_check

    return _from_check(train_run_check(ctx.config))


def _train_run(ctx: StageContext, force: bool):
    from training.curriculum import run_training

    run_training(ctx.config, config_text=ctx.config_text, command=ctx.command, force=force)


register(StageKind("train", "a training curriculum (soaes train cpt|sft|distill): run.json + final weights",
                   _train_load, "output_dir", lambda ctx: {"": ctx.out, "final": ctx.out / "final"},
                   _train_check, _train_run))


# ---- distill capture ---------------------------------------------------------------------------------
# Distillation training itself is the "train" kind with `kind: distill` (stored or online teacher).

def _capture_load(data):
    from training.distill_capture import CaptureConfig

    return _validated(CaptureConfig, data, "(stage distill_capture)")


def _capture_check(ctx: StageContext, deep: bool) -> StageStatus:
    from corpora_manifests.runs import manifest_run_check

    return _from_check(manifest_run_check(ctx.out, ctx.config.model_dump(mode="json"), deep=deep))


def _capture_run(ctx: StageContext, force: bool):
    from training.distill_capture import run_capture

    run_capture(ctx.config, config_text=ctx.config_text, command=ctx.command, force=force, progress=False)


register(StageKind("distill_capture", "teacher top-k log-probs (soaes distill capture): a distill_logits manifest",
                   _capture_load, "output_dir", lambda ctx: {"": ctx.out}, _capture_check, _capture_run))


# ---- eval -------------------------------------------------------------------------------------------

def _eval_load(data):
    from training.eval_stage import EvalStageConfig

    return _validated(EvalStageConfig, data, "(stage eval)")


def _eval_outputs(ctx: StageContext) -> dict[str, Path]:
    from training.eval_stage import outputs

    return outputs(Path(ctx.config.output_dir), ctx.config)


def _eval_check(ctx: StageContext, deep: bool) -> StageStatus:
    from training.eval_stage import check

    return _from_check(check(Path(ctx.config.output_dir), ctx.config))


def _eval_run(ctx: StageContext, force: bool):
    from training.eval_stage import run_eval_stage

    run_eval_stage(ctx.config, force=force)


def _eval_fingerprint(ctx: StageContext) -> str | None:
    p = Path(ctx.config.output_dir) / "eval.json"
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


register(StageKind("eval", "evaluation (soaes eval): generate → score → compare per trained stage (Table 2); "
                   "specbench for a draft", _eval_load, "output_dir", _eval_outputs, _eval_check, _eval_run,
                   _eval_fingerprint))
