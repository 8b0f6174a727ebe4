"""Run a curriculum: stage after stage, each from the previous stage's weights, resumable.

Output layout (``output_dir``)::

    run.json                      config + sha256, provenance, consumed manifests + hashes, results
    rejects/<stage>.jsonl         samples that could not be trained on, with reasons
    stages/NN-<name>/checkpoints  HF/DeepSpeed checkpoints (resume points)
    stages/NN-<name>/model        the stage's final weights (+ tokenizer): the next stage's start
    stages/NN-<name>/stage.json   written last: the stage is finished
    final -> stages/NN-<name>/model

Re-running a finished run is a no-op; re-running an interrupted one resumes from the last complete
checkpoint of the unfinished stage (a checkpoint is complete once its trainer_state.json exists,
which the Trainer writes last). Changing a config under an existing output_dir is refused.
"""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from corpora_manifests.errors import UserError
from corpora_manifests.models import atomic_write_text

from .config import StageConfig, TrainConfig

log = logging.getLogger(__name__)


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def stage_dir(cfg: TrainConfig, index: int) -> Path:
    return Path(cfg.output_dir) / "stages" / f"{index + 1:02d}-{cfg.stages[index].name}"


def _rng_states_complete(d: Path, world_size: int) -> bool:
    """Every rank's RNG file is whole. Rank 0 writes trainer_state.json after its own files and
    after DeepSpeed's closing barrier, but without waiting for the other ranks' rng_state_<r>.pth:
    a process killed right then leaves one missing or cut short."""
    if world_size <= 1:
        return True
    import torch

    for r in range(world_size):
        try:
            torch.load(d / f"rng_state_{r}.pth", weights_only=False)
        except Exception:  # missing or truncated: torch raises several kinds
            return False
    return True


def last_complete_checkpoint(checkpoints: Path, world_size: int = 1) -> Path | None:
    best, best_step = None, -1
    if not checkpoints.is_dir():
        return None
    for d in checkpoints.glob("checkpoint-*"):
        try:
            step = int(d.name.split("-")[-1])
            json.loads((d / "trainer_state.json").read_text())
        except (ValueError, OSError, json.JSONDecodeError):
            continue
        if step > best_step and _rng_states_complete(d, world_size):
            best, best_step = d, step
    return best


def check_checkpoint_world_size(checkpoint: Path, world_size: int) -> None:
    """ZeRO checkpoints hold one optimizer shard per process; DeepSpeed cannot load them into a
    different number of processes (it fails deep inside with a missing file): say so plainly."""
    shards = list(checkpoint.glob("global_step*/*_optim_states.pt"))
    if shards and len(shards) != world_size:
        raise UserError(f"{checkpoint} was written by {len(shards)} processes; resume it with {len(shards)} "
                        f"(this run has {world_size}), or use a new output_dir")


def _drop_incomplete_checkpoints(checkpoints: Path, keep: Path | None) -> None:
    for d in checkpoints.glob("checkpoint-*") if checkpoints.is_dir() else []:
        if d != keep and not (d / "trainer_state.json").exists():
            shutil.rmtree(d, ignore_errors=True)


def training_arguments(cfg: TrainConfig, stage: StageConfig, sdir: Path, world_size: int):
    from transformers import TrainingArguments

    from .deepspeed_config import deepspeed_config, gradient_accumulation, has_cuda, use_bf16

    kwargs: dict[str, Any] = {}
    if stage.min_lr_rate is not None:
        # min_lr_rate, not min_lr: the absolute form crashes under ZeRO-3 (transformers 5.x).
        kwargs["lr_scheduler_kwargs"] = {"min_lr_rate": stage.min_lr_rate}
    return TrainingArguments(
        output_dir=str(sdir / "checkpoints"),
        per_device_train_batch_size=stage.micro_batch_size,
        gradient_accumulation_steps=gradient_accumulation(stage, world_size),
        learning_rate=stage.learning_rate,
        lr_scheduler_type=stage.lr_scheduler,
        warmup_steps=stage.warmup,  # transformers 5.x: a float < 1 is a ratio (there is no warmup_ratio)
        weight_decay=stage.weight_decay,
        max_grad_norm=stage.max_grad_norm,
        num_train_epochs=stage.epochs,
        max_steps=stage.max_steps or -1,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        bf16=use_bf16(cfg),
        deepspeed=deepspeed_config(cfg, stage, world_size),
        use_cpu=not has_cuda(),
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=cfg.dataloader_num_workers,
        remove_unused_columns=False,
        report_to=[],
        disable_tqdm=os.environ.get("SOAES_NO_PROGRESS") == "1",
        **kwargs,
    )


def _write_rejects(out: Path, stage: StageConfig, rejects: list[dict[str, Any]]) -> None:
    from corpora_manifests.rejects import RejectsWriter

    target = out / "rejects" / f"{stage.name}.jsonl"
    if target.exists():
        target.unlink()  # a resumed stage re-derives the same rejects; never append duplicates
    with RejectsWriter(out, name=stage.name) as rw:
        for r in rejects:
            r = dict(r)
            rw.reject(r.pop("reason"), **r)


def _final_loss(history: list[dict[str, Any]]) -> float | None:
    losses = [h["loss"] for h in history if "loss" in h]
    return float(losses[-1]) if losses else None


def run_stage(cfg: TrainConfig, index: int, tokenizer, init_from: Path | None, world_size: int) -> dict[str, Any]:
    from transformers import Trainer

    from .model_factory import load_model
    from .stage_data import build_stage_data

    stage = cfg.stages[index]
    sdir = stage_dir(cfg, index)
    stage_key = _sha({"stage": stage.model_dump(), "seq_len": cfg.seq_len, "kind": cfg.kind,
                      "model": cfg.model.model_dump() if index == 0 else str(init_from)})
    done = sdir / "stage.json"
    if done.exists():
        result = json.loads(done.read_text(encoding="utf-8"))
        if result.get("stage_key") != stage_key:
            raise UserError(f"{sdir} holds a finished stage of a different config; use a new output_dir")
        return result

    args = training_arguments(cfg, stage, sdir, world_size)
    if args.deepspeed and world_size > 1:
        # On CPU (use_cpu) the Trainer does not set up the process group before the model is built,
        # and ZeRO-3's zero.Init then sizes batches for one process: initialise it here.
        import deepspeed

        from .deepspeed_config import has_cuda

        deepspeed.init_distributed(dist_backend=None if has_cuda() else "gloo")
    with args.main_process_first(desc=f"tokenize {stage.name}", local=False):
        data = build_stage_data(cfg, stage, tokenizer, progress=args.process_index == 0)
    # A resumed stage must train on the data it started with: the cache keys hash every manifest.
    data_key = sdir / "data_key.json"
    keys = {"cache_keys": [t.key for t in data.tokenized]}
    if data_key.exists() and json.loads(data_key.read_text()) != keys:
        raise UserError(f"stage {stage.name}: its manifests changed since the stage started ({sdir}); "
                        "use a new output_dir")
    if args.process_index == 0 and not data_key.exists():
        sdir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(data_key, json.dumps(keys))
    if data.plan.n_sequences == 0:
        raise UserError(f"stage {stage.name}: no trainable samples in {stage.manifests} (see rejects/)")
    if args.process_index == 0:
        _write_rejects(Path(cfg.output_dir), stage, data.rejects)

    model = load_model(cfg, init_from, tokenizer)
    dataset = data.dataset()
    if cfg.kind == "distill":
        from .distill_trainer import KDTrainer, load_online_teacher

        teacher = load_online_teacher(stage.distill.teacher, model, args) if stage.distill.teacher else None
        trainer = KDTrainer(model=model, args=args, train_dataset=dataset, data_collator=dataset.collator,
                            distill=stage.distill, n_real=len(tokenizer), teacher=teacher)
    else:
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=dataset.collator)
    checkpoints = sdir / "checkpoints"
    resume = last_complete_checkpoint(checkpoints, world_size)
    if resume:
        check_checkpoint_world_size(resume, world_size)
    if args.process_index == 0:
        _drop_incomplete_checkpoints(checkpoints, resume)
    if resume:
        log.info("stage %s: resuming from %s", stage.name, resume)
    out = trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    model_dir = sdir / "model"
    trainer.save_model(str(model_dir))
    result = {
        "stage": stage.name,
        "index": index,
        "stage_key": stage_key,
        "config": stage.model_dump(),
        "init_from": str(init_from) if init_from else (cfg.model.path or "model.tiny"),
        "model_dir": str(model_dir),
        "resumed_from": str(resume) if resume else None,
        "global_step": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "train_loss": out.training_loss,
        "final_loss": _final_loss(trainer.state.log_history),
        "log_history": trainer.state.log_history,
        "deepspeed": args.deepspeed if isinstance(args.deepspeed, dict) else None,
        "world_size": world_size,
        **data.summary(),
    }
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(model_dir))
        atomic_write_text(done, json.dumps(result, indent=2, ensure_ascii=False, default=str))
    trainer.accelerator.wait_for_everyone()
    del trainer, model
    gc.collect()
    return result


def hold_output_lock(out: Path):
    """An exclusive lock on ``out/.lock`` for the life of this process (rank 0 takes it).

    A launcher killed alone leaves its workers training (torchrun starts each in its own session),
    and a restarted run would then share checkpoints with them: refused in one line instead."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    f = open(out / ".lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise UserError(f"another training process is using {out} (a worker of an earlier run may still be "
                        "alive: stop it first)") from None
    return f


def _link_final(out: Path, model_dir: Path) -> None:
    link = out / "final"
    tmp = out / ".final.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(model_dir, out), tmp)
    os.replace(tmp, link)


# Where the run and its token cache live does not change what is trained.
TRAIN_LOCATION_KEYS = ("output_dir", "cache_dir", "dataloader_num_workers")


def train_effective_config(cfg: TrainConfig) -> dict[str, Any]:
    from corpora_manifests.runs import effective_config

    return effective_config(cfg.model_dump(mode="json"), TRAIN_LOCATION_KEYS)


def _has_weights(model_dir: Path) -> bool:
    return model_dir.is_dir() and (any(model_dir.glob("*.safetensors")) or any(model_dir.glob("pytorch_model*.bin")))


STARTED_FILE = "run_started.json"  # the effective config an unfinished run was started with


def train_run_check(cfg: TrainConfig):
    """The finished-run check for a training run: run.json is the record, the final weights (and
    every stage's weights) are the outputs that must exist."""
    from corpora_manifests.runs import check_run

    out = Path(cfg.output_dir)
    run_json = out / "run.json"
    if not run_json.exists():
        started = out / STARTED_FILE
        if not started.exists():
            return check_run(out, {}, None)
        # an interrupted run: resumable with the same config, refused (or --force) with another
        recorded = json.loads(started.read_text(encoding="utf-8"))
        check = check_run(out, train_effective_config(cfg), recorded, ["interrupted before the end"])
        return check
    try:
        prev = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        prev = {}
    recorded = {"config": (prev.get("producer") or {}).get("config") or {},
                "config_sha256": prev.get("resolved_config_sha256")}
    problems = []
    if not _has_weights(out / "final"):
        problems.append(f"no final weights in {out / 'final'}")
    for i in range(len(cfg.stages)):
        if not _has_weights(stage_dir(cfg, i) / "model"):
            problems.append(f"stage {cfg.stages[i].name}: no weights in {stage_dir(cfg, i) / 'model'}")
    return check_run(out, train_effective_config(cfg), recorded, problems)


def run_training(config: TrainConfig | str | Path, overrides: list[str] | None = None, *,
                 config_text: str | None = None, command: str | None = None, force: bool = False) -> Path:
    """Train every stage of ``config`` (a TrainConfig or a YAML path + ``key=value`` overrides,
    ``stages.N.key=value`` included); return the output directory."""
    from corpora_manifests.provenance import make_provenance
    from corpora_manifests.runs import config_hash, decide, reset_output
    from corpora_manifests.tokenizer import TokenizerNotFound, load_tokenizer, tokenizer_info

    if not isinstance(config, TrainConfig):
        from .config import load_train_config

        config, config_text = load_train_config(config, overrides)
    cfg = config
    out = Path(cfg.output_dir)
    cfg_dump = cfg.model_dump(mode="json")
    effective = train_effective_config(cfg)
    cfg_sha = config_hash(effective)
    run_json = out / "run.json"
    check = train_run_check(cfg)
    if decide(check, force, what="train"):
        return out
    if force and check.state != "absent":
        reset_output(out)
    elif check.state == "incomplete":
        # Finished on paper but the weights are gone: forget the record and the stages whose
        # weights are missing; run_stage then resumes each from its last kept checkpoint.
        run_json.unlink(missing_ok=True)
        for i in range(len(cfg.stages)):
            sdir = stage_dir(cfg, i)
            if not _has_weights(sdir / "model"):
                (sdir / "stage.json").unlink(missing_ok=True)

    if int(os.environ.get("RANK", "0")) == 0 and not (out / STARTED_FILE).exists():
        from corpora_manifests.runs import redact_credentials

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / STARTED_FILE, json.dumps(
            {"config": redact_credentials(cfg_dump), "config_sha256": cfg_sha}, indent=2, ensure_ascii=False))
    from .deepspeed_config import ensure_process_env

    world_size = ensure_process_env()
    lock = hold_output_lock(out) if int(os.environ.get("RANK", "0")) == 0 else None  # noqa: F841 (held until exit)
    try:
        tokenizer = load_tokenizer(cfg.tokenizer)
    except TokenizerNotFound as e:
        raise UserError(str(e)) from None
    out.mkdir(parents=True, exist_ok=True)
    results = []
    init_from: Path | None = None
    for i in range(len(cfg.stages)):
        r = run_stage(cfg, i, tokenizer, init_from, world_size)
        results.append({k: v for k, v in r.items() if k != "log_history"})
        init_from = Path(r["model_dir"])
    if int(os.environ.get("RANK", "0")) == 0:
        _link_final(out, init_from)
        prov = make_provenance(cfg_dump, config_text, command, hashed=effective)
        record = {
            "name": cfg.name,
            "kind": cfg.kind,
            "status": "complete",
            "resolved_config_sha256": cfg_sha,
            "producer": prov.model_dump(mode="json"),
            "tokenizer": tokenizer_info(tokenizer).model_dump(),
            "consumed_manifests": [m for r in results for m in r["manifests"]],
            "stages": results,
            "final_model": str(out / "final"),
        }
        atomic_write_text(run_json, json.dumps(record, indent=2, ensure_ascii=False, default=str))
    return out
