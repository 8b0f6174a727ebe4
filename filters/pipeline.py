"""`run_filters(config) -> Path`: the SFT stage-1 pipeline on datatrove's executors.

read → language (zh) → domain (categories + classifier) → near-dedup → decontamination → shards.
A directory holding ``manifest.json`` is a finished run: running again is a no-op. An unfinished
run resumes: datatrove's completion markers (``<out>/.datatrove/filter``) skip finished tasks, and an
unfinished task restarts from scratch (its shards and rejects files are replaced).
"""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from corpora_manifests.errors import UserError

from .config import FiltersConfig


def build_pipeline(cfg: FiltersConfig, out: Path) -> list:
    from .steps import (ChineseLanguageFilter, DecontaminationFilter, DomainFilter, InstructionDedupFilter,
                        InstructionReader, RejectsSink, SFTShardWriter)

    steps: list = [InstructionReader([i.model_dump() for i in cfg.inputs], rejects_dir=out)]
    if cfg.lang.enabled:
        steps.append(ChineseLanguageFilter(cfg.lang.model, cfg.lang.mixed_policy, cfg.lang.mixed_low,
                                           cfg.lang.mixed_high, cfg.lang.second_opinion_below,
                                           exclusion_writer=RejectsSink(out, "lang")))
    if cfg.domain.enabled:
        steps.append(DomainFilter(cfg.domain.model, cfg.domain.threshold, cfg.domain.keep_domains,
                                  cfg.categories.keep, cfg.categories.exclude, cfg.categories.keep_min_score,
                                  batch_size=cfg.domain.batch_size, lexicon_min_hits=cfg.domain.lexicon_min_hits,
                                  exclusion_writer=RejectsSink(out, "domain")))
    if cfg.seed.enabled:
        from .seed import ScoreThresholdFilter, SeedSimilarityScorer

        steps.append(SeedSimilarityScorer(cfg.seed.seeds, cfg.seed.mode, cfg.seed.model, cfg.seed.top_k))
        steps.append(ScoreThresholdFilter("seed.score", cfg.seed.threshold, exclusion_writer=RejectsSink(out, "seed")))
    if cfg.dedup.enabled:
        steps.append(InstructionDedupFilter(cfg.dedup.threshold, cfg.dedup.num_perm, cfg.dedup.ngram,
                                            exclusion_writer=RejectsSink(out, "dedup")))
    if cfg.decontam.enabled and cfg.decontam.eval_sets:
        steps.append(DecontaminationFilter([e.model_dump() for e in cfg.decontam.eval_sets], cfg.decontam.ngram,
                                           cfg.decontam.stride, exclusion_writer=RejectsSink(out, "decontam")))
    steps.append(SFTShardWriter(out, cfg.tokenizer, target_bytes=cfg.shard_target_mb << 20))
    return steps


def _preflight(cfg: FiltersConfig) -> None:
    """User errors fail before any work: missing inputs, models, evaluation sets."""
    from .readers import sample_files

    for spec in cfg.inputs:
        files = sample_files([spec.path])
        if not files or not any(f.exists() for f in files):
            raise UserError(f"input {spec.path!r} matches no instruction file")
    if cfg.domain.enabled:
        from .domain.model import DomainModel

        DomainModel(cfg.domain.model)  # raises UserError when missing
    if cfg.lang.enabled:
        from .langid import lid176_path

        if cfg.lang.model and not Path(cfg.lang.model).exists():
            raise UserError(f"language-ID model not found: {cfg.lang.model}")
        if not cfg.lang.model:
            lid176_path()
    if cfg.seed.enabled:
        from .seed import load_seeds

        if not cfg.seed.seeds:
            raise UserError("seed.enabled needs seed.seeds (a file of seed examples)")
        load_seeds(cfg.seed.seeds)  # raises UserError when missing or empty
        if cfg.seed.mode == "hf" and not (cfg.seed.model and Path(cfg.seed.model).is_dir()):
            raise UserError(f"seed.mode hf needs seed.model, a local transformers model directory (got {cfg.seed.model!r})")
    for es in cfg.decontam.eval_sets if cfg.decontam.enabled else []:
        if not Path(es.path).exists():
            raise UserError(f"evaluation set {es.name!r} not found: {es.path}")


_EXAMPLE_KEYS = ("id", "source", "detail", "excerpt", "lang.label", "lang.zh_share", "domain.label", "domain.p_in",
                 "seed.score",
                 "domain.category_matched", "dedup.duplicate_of", "decontam.eval_set", "decontam.eval_id",
                 "decontam.ngram")


def _summarise(out: Path, cfg: FiltersConfig, examples_per_reason: int) -> dict[str, Any]:
    """Counts and distributions in one streaming pass over the rejects; only ``examples_per_reason``
    examples per reason are kept, so memory does not grow with the number of rejects."""
    from corpora_manifests.rejects import iter_rejects

    from corpora_manifests.shard_step import read_parts

    shards, kept = [], {"lang": Counter(), "domain": Counter(), "source": Counter(), "decided_by": Counter()}
    for d in read_parts(out):
        shards += d["shards"]
        for k, v in d["kept"].items():
            kept.setdefault(k, Counter()).update(v)
    reasons: Counter = Counter()
    by_stage: Counter = Counter()
    examples: dict[str, list[dict]] = {}
    # Distributions over every sample that reached the step (kept + dropped there or later).
    lang_all = Counter(kept["lang"])
    domain_all = Counter(kept["domain"])
    per_source: dict[str, Counter] = {}
    for src, n in kept["source"].items():
        per_source.setdefault(src, Counter())["kept"] += n
    n_rejects = 0
    for r in iter_rejects(out / "rejects") if (out / "rejects").exists() else ():
        n_rejects += 1
        reasons[r["reason"]] += 1
        by_stage[r.get("stage")] += 1
        ex = examples.setdefault(r["reason"], [])
        if len(ex) < examples_per_reason:
            ex.append({k: r.get(k) for k in _EXAMPLE_KEYS if r.get(k) is not None})
        if "lang.label" in r:
            lang_all[str(r["lang.label"])] += 1
        if "domain.label" in r:
            domain_all[str(r["domain.label"])] += 1
        per_source.setdefault(str(r.get("source") or "unknown"), Counter())["rejected"] += 1
    n_kept = sum(kept["source"].values())
    return {
        "shards": shards,
        "stats": {
            "records_read": n_kept + n_rejects,
            "records_kept": n_kept,
            "records_dropped": n_rejects,
            "drop_reasons": dict(reasons.most_common()),
            "dropped_by_step": dict(by_stage),
            "language_distribution": dict(lang_all.most_common()),
            "language_distribution_kept": dict(kept["lang"].most_common()),
            "domain_distribution": dict(domain_all.most_common()),
            "domain_distribution_kept": dict(kept["domain"].most_common()),
            "domain_decided_by_kept": dict(kept["decided_by"]),
            "per_source": {k: dict(v) for k, v in sorted(per_source.items())},
        },
        "examples": examples,
    }


class FinalizeFilters:
    """Summary, report and manifest from the ranks' sidecars, as a picklable call (on Slurm: the last,
    dependent job)."""

    def __init__(self, cfg: FiltersConfig, config_text: str | None, command: str | None):
        self.cfg, self.config_text, self.command = cfg, config_text, command

    def __call__(self) -> Path:
        return finalize_filters(self.cfg, self.config_text, self.command)


# Where a run lives and how many processes run it do not change what it produces.
FILTERS_LOCATION_KEYS = ("output", "executor.kind", "executor.workers", "executor.slurm", "executor.ray")


def filters_effective_config(cfg: FiltersConfig) -> dict[str, Any]:
    from corpora_manifests.runs import effective_config

    return effective_config(cfg.model_dump(mode="json"), FILTERS_LOCATION_KEYS)


def run_filters(config: FiltersConfig | str | Path, overrides: list[str] | None = None,
                config_text: str | None = None, command: str | None = None, force: bool = False) -> Path:
    """Run SFT stage 1; return the output directory (holding manifest.json, data/, rejects/, report)."""
    from corpora_manifests.config import load_config
    from corpora_manifests.models import MANIFEST_FILENAME
    from corpora_manifests.errors import UserError
    from corpora_manifests.runs import decide, effective_config, manifest_run_check, reset_output

    if not isinstance(config, FiltersConfig):
        config, config_text = load_config(config, FiltersConfig, overrides)
    cfg = config
    out = Path(cfg.output)
    check = manifest_run_check(out, filters_effective_config(cfg))
    if decide(check, force, what="filters"):
        return out
    if check.state == "incomplete" and not force:
        raise UserError(f"filters: {out}: recorded outputs do not check out ({'; '.join(check.problems[:2])}); "
                        "rerun with --force to redo the stage")
    if check.state != "absent":
        reset_output(out)
    _preflight(cfg)
    out.mkdir(parents=True, exist_ok=True)
    from corpora_manifests.executor import Stage, check_executor, run_stages

    check_executor(cfg.executor)
    pipeline = build_pipeline(cfg, out)
    # local/ray: blocks, then finalizes here; slurm: returns once the job array and the finalize job are queued
    run_stages([Stage("filter", pipeline, cfg.executor.n_tasks)], cfg.executor, out, out / ".datatrove",
               finalize=FinalizeFilters(cfg, config_text, command))
    return out


def finalize_filters(cfg: FiltersConfig, config_text: str | None = None, command: str | None = None) -> Path:
    """Merge the ranks: summary (streamed), report and manifest.json (last)."""
    from corpora_manifests.models import Manifest, Shard, Source
    from corpora_manifests.provenance import make_provenance
    from corpora_manifests.tokenizer import load_tokenizer, tokenizer_info

    from .report import write_report

    out = Path(cfg.output)
    from corpora_manifests.shard_step import read_parts

    n_parts = len(read_parts(out))
    if n_parts < cfg.executor.n_tasks:
        raise RuntimeError(f"only {n_parts} of {cfg.executor.n_tasks} tasks finished; see {out / '.datatrove'}; "
                           "run again to resume")
    summary = _summarise(out, cfg, cfg.report_examples_per_reason)
    stats = summary["stats"]
    sources = []
    for spec in cfg.inputs:
        name = spec.source or Path(spec.path).stem
        c = stats["per_source"].get(name, {})
        sources.append(Source(name=name, uri=spec.path, licence=spec.licence,
                              counts={"kept": int(c.get("kept", 0)), "rejected": int(c.get("rejected", 0))}))
    known = {s.name for s in sources}
    for name, c in stats["per_source"].items():  # sources named by the records themselves
        if name not in known:
            sources.append(Source(name=name, counts={k: int(v) for k, v in c.items()}))
    tok = load_tokenizer(cfg.tokenizer)
    manifest = Manifest(
        name=cfg.name, stage="sft_stage1",
        producer=make_provenance(cfg.model_dump(mode="json"), config_text, command=command,
                                 hashed=filters_effective_config(cfg)),
        tokenizer=tokenizer_info(tok),
        sources=sources,
        shards=[Shard(**s) for s in summary["shards"]],
        stats={**stats, "n_tokens": "sum of Qwen2.5 token counts of the message contents (no chat-template tokens)",
               "report": "report.md"},
    )
    write_report(out, manifest, summary)
    manifest.write(out)
    shutil.rmtree(out / ".parts", ignore_errors=True)
    return out
