"""``--dry-run``: resolve the config, verify and tokenise the data (cached), pack it, and report
token/sequence counts, steps per stage and the DeepSpeed JSON, without building a model."""
from __future__ import annotations

import json
from typing import Any

from .config import TrainConfig


def plan_run(cfg: TrainConfig, world_size: int = 1, progress: bool = True) -> dict[str, Any]:
    from corpora_manifests.errors import UserError
    from corpora_manifests.tokenizer import TokenizerNotFound, load_tokenizer, tokenizer_info

    from .deepspeed_config import attn_implementation, deepspeed_config, gradient_accumulation, use_bf16
    from .stage_data import build_stage_data, steps_per_stage

    try:
        tokenizer = load_tokenizer(cfg.tokenizer)
    except TokenizerNotFound as e:
        raise UserError(str(e)) from None
    stages = []
    for stage in cfg.stages:
        data = build_stage_data(cfg, stage, tokenizer, progress=progress)
        stages.append({
            "name": stage.name,
            "manifests": [{"path": i.consumed.path, "name": i.consumed.name, "stage": i.consumed.stage,
                           "split": i.consumed.split, "records": i.consumed.records,
                           "manifest_sha256": i.consumed.manifest_sha256} for i in data.inputs],
            "trainable_samples": data.plan.stats["documents"],
            "tokens": data.plan.stats["document_tokens"],
            "target_tokens": data.summary()["target_tokens"],
            "sequences": data.plan.n_sequences,
            "packing_efficiency": round(data.plan.stats["efficiency"], 4),
            "tokens_lost": data.plan.stats["tokens_lost"],
            "split_conversations": data.summary()["split_conversations"],
            "rejects": data.reject_counts,
            "gradient_accumulation": gradient_accumulation(stage, world_size),
            "steps": steps_per_stage(data.plan.n_sequences, stage, world_size),
            "deepspeed": deepspeed_config(cfg, stage, world_size),
        })
    return {
        "config": cfg.model_dump(mode="json"),
        "tokenizer": tokenizer_info(tokenizer).model_dump(),
        "world_size": world_size,
        "bf16": use_bf16(cfg),
        "attn_implementation": attn_implementation(cfg),
        "stages": stages,
    }


def print_plan(plan: dict[str, Any], echo) -> None:
    import yaml

    echo("# resolved config")
    echo(yaml.safe_dump(plan["config"], allow_unicode=True, sort_keys=False).rstrip())
    echo(f"# tokenizer {plan['tokenizer']['name']} fp={plan['tokenizer']['fingerprint'][:16]}  "
         f"world_size={plan['world_size']}  bf16={plan['bf16']}  attn={plan['attn_implementation']}")
    for s in plan["stages"]:
        echo(f"# stage {s['name']}")
        for m in s["manifests"]:
            echo(f"  manifest {m['path']} ({m['stage']}, split={m['split']}): {m['records']} records, "
                 f"sha256 {m['manifest_sha256'][:16]}")
        echo(f"  samples={s['trainable_samples']} tokens={s['tokens']} target_tokens={s['target_tokens']} "
             f"sequences={s['sequences']} packing_efficiency={s['packing_efficiency']:.2%} "
             f"tokens_lost={s['tokens_lost']} split_conversations={s['split_conversations']} "
             f"rejects={json.dumps(s['rejects'])}")
        echo(f"  gradient_accumulation={s['gradient_accumulation']} steps={s['steps']}")
        echo("  deepspeed: " + (json.dumps(s["deepspeed"], indent=2).replace("\n", "\n  ") if s["deepspeed"] else "disabled"))
