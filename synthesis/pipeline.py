"""The SFT stage-2 pipeline: documents → chunks → Q&A (GLM-4 or rules) → validation → review store
→ approved + expert items → train/dev/test by document → shards + manifests.

``run_synthesis(config) -> Path`` is the entry point (``soaes synth run`` calls it). Outputs under
``output_dir``::

    review.sqlite                 review store (items, decisions, split assignments)
    cache/llm_cache.sqlite        request cache (LLM generator)
    sft_stage2/manifest.json      stage sft_stage2, split train
    sft_stage2/data/train/part-*.parquet
    eval/manifest.json            stage eval, splits dev and test
    eval/data/{dev,test}/part-*.parquet
    rejects/synthesis.jsonl       every dropped document, response and pair, with its reason
    stats.json, report.html       counts, grounding distribution, split composition

A re-run with the same config, the same approvals and a clean generation is a no-op. Generation
itself is idempotent: cached responses are reused, existing items are left untouched.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from corpora_manifests.config import load_config
from corpora_manifests.errors import UserError
from corpora_manifests.models import MANIFEST_FILENAME, Manifest, Source, load_manifest
from corpora_manifests.rejects import RejectsWriter

from .config import SynthConfig
from .items import QAItem, make_item_id, wants_report

log = logging.getLogger(__name__)
PIPELINE_VERSION = "1"


def load_synth_config(path: str | Path | None, overrides: list[str] | None = None) -> tuple[SynthConfig, str]:
    cfg, text = load_config(path, SynthConfig, overrides)
    return cfg.resolve(Path.cwd()), text


def run_synthesis(config: SynthConfig | str | Path, overrides: list[str] | None = None, *,
                  config_text: str | None = None, command: str | None = None, force: bool = False,
                  progress: bool = True) -> Path:
    """Run stage 2 end to end; return the output directory."""
    if isinstance(config, (str, Path)):
        cfg, config_text = load_synth_config(config, overrides)
    else:
        cfg = config.resolve(Path.cwd())
    if config_text is None:
        config_text = json.dumps(cfg.model_dump(), sort_keys=True, ensure_ascii=False)
    out = Path(cfg.output_dir)

    from .store import ReviewStore

    # Fail fast on what the user must fix, before any work.
    api_key = None
    if cfg.generator == "llm":
        from .llm_client import check_endpoint, resolve_api_key

        _, api_key = resolve_api_key(cfg.llm)
        check_endpoint(cfg.llm, api_key)
    for e in cfg.expert:
        if not Path(e.path).exists():
            raise UserError(f"expert file not found: {e.path}")
    if not Path(cfg.source.path).exists():
        raise UserError(f"source not found: {cfg.source.path}")

    # The shared finished-run policy: another effective config refuses (with the changed keys)
    # unless forced. Same config: the fingerprint below (approvals, source) decides the rest.
    from corpora_manifests.runs import decide, manifest_run_check

    effective = synth_effective_config(cfg)
    check = manifest_run_check(out, effective, manifest_dirs=[out / "sft_stage2", out / "eval"])
    if check.state == "changed":
        decide(check, force, what="synth")
    out.mkdir(parents=True, exist_ok=True)
    store = ReviewStore(cfg.store_path)
    try:
        fingerprint = _run_fingerprint(cfg, config_text, store)
        if check.state == "incomplete":
            fingerprint += ":outputs-do-not-check-out"  # never a no-op: rebuild the manifests
        if not force and _finished(out, fingerprint):
            log.info("nothing to do: %s is finished for this config and these approvals", out)
            return out
        t0 = time.time()
        rejects_path = out / "rejects" / "synthesis.jsonl"
        if rejects_path.exists():
            rejects_path.unlink()  # every reject is re-derived by this run
        rejects = RejectsWriter(out, name="synthesis")
        try:
            gen = _generate(cfg, store, rejects, api_key, progress)
            _auto_approve(cfg, store)
            fingerprint = _run_fingerprint(cfg, config_text, store)
            expert_items = []
            for e in cfg.expert:
                from .expert import read_expert_items

                expert_items += read_expert_items(e.path, e.format, rejects)
            built = _build(cfg, store, expert_items, gen, config_text, command, fingerprint, rejects, t0)
        finally:
            rejects.close()
        _write_report(out, built)
        return out
    finally:
        store.close()


# ---- fingerprint / no-op ----------------------------------------------------------------------------

SYNTH_LOCATION_KEYS = ("output_dir", "llm.cache_path", "review.store_path", "llm.max_concurrency",
                       # incremental by design: expert files merge into an existing run (the run
                       # fingerprint covers them and rebuilds), like new review decisions do
                       "expert")


def synth_effective_config(cfg: SynthConfig) -> dict[str, Any]:
    from corpora_manifests.runs import effective_config

    return effective_config(cfg.model_dump(mode="json"), SYNTH_LOCATION_KEYS)


def _file_sig(path: str) -> str:
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_FILENAME
    st = p.stat()
    return f"{p}:{st.st_size}:{int(st.st_mtime)}"


def _run_fingerprint(cfg: SynthConfig, config_text: str, store) -> str:
    h = hashlib.sha256()
    h.update(PIPELINE_VERSION.encode())
    h.update(hashlib.sha256(config_text.encode("utf-8")).hexdigest().encode())
    dump = cfg.model_dump()
    # where the run lives is not what it is: a moved or copied run directory stays finished
    dump.pop("output_dir")
    dump["chunking"].pop("executor", None)  # where chunking runs does not change the chunks
    dump["llm"].pop("cache_path")
    dump["review"].pop("store_path")
    h.update(json.dumps(dump, sort_keys=True, ensure_ascii=False).encode())
    h.update(_file_sig(cfg.source.path).encode())
    for e in cfg.expert:
        h.update(_file_sig(e.path).encode())
    h.update(store.approvals_fingerprint().encode())
    return h.hexdigest()


def _finished(out: Path, fingerprint: str) -> bool:
    try:
        m = load_manifest(out / "sft_stage2")
        load_manifest(out / "eval")
    except Exception:  # noqa: BLE001 - no or unreadable manifest: not finished
        return False
    s = m.stats.get("synthesis", {})
    return s.get("fingerprint") == fingerprint and not s.get("generation_failures")


# ---- generation -------------------------------------------------------------------------------------

def sample_chunks(chunks: list, cap: int | None) -> list:
    """At most ``cap`` chunks, in document order: those with the lowest sha256 of their id. Hashing the
    id (not the position) keeps the choice stable when documents are added or reordered, and nests:
    the chunks of a smaller cap are among a larger cap's. Left-out chunks are a choice, not a reject."""
    if not cap or len(chunks) <= cap:
        return chunks
    import hashlib

    rank = sorted(range(len(chunks)), key=lambda i: hashlib.sha256(chunks[i].chunk_id.encode()).digest())
    keep = set(rank[:cap])
    return [c for i, c in enumerate(chunks) if i in keep]


def _generate(cfg: SynthConfig, store, rejects: RejectsWriter, api_key: str | None, progress: bool) -> dict[str, Any]:
    from corpora_manifests.tokenizer import load_tokenizer

    from .chunking import chunk_documents
    from .sources import iter_documents

    tokenizer = load_tokenizer(cfg.chunking.tokenizer)
    docs = list(iter_documents(cfg.source, rejects))
    if not docs:
        raise UserError(f"no usable documents in {cfg.source.path}")
    ex = cfg.chunking.executor
    if ex.kind == "local" and ex.n_tasks == 1:
        chunks = list(chunk_documents(docs, tokenizer, cfg.chunking.max_tokens, cfg.chunking.min_chars))
    else:  # datatrove tasks on the shared executor (synthesis/chunk_stage.py)
        from .chunk_stage import chunk_on_executor

        chunks = chunk_on_executor(docs, cfg.chunking, Path(cfg.output_dir) / "chunk_work")
    n_all = len(chunks)
    chunks = sample_chunks(chunks, cfg.chunking.max_chunks)
    log.info("%d documents, %d chunks (%d generated from)", len(docs), n_all, len(chunks))

    # raw: (chunk, task_type, pair dict, provenance metadata)
    raw: list[tuple[Any, str, dict[str, Any], dict[str, Any]]] = []
    usage: dict[str, Any] = {}
    failures = 0
    if cfg.generator == "rules":
        from .rules import rules_pairs

        for ch in chunks:
            pairs = rules_pairs(ch, cfg.prompts.report_fraction)
            if not pairs:
                rejects.reject("rules_no_articles", id=ch.chunk_id, stage="generate", detail=ch.title)
            for p in pairs:
                raw.append((ch, p["task_type"], p, {"synth.rule": p["rule"], "synth.generator": "rules"}))
    else:
        results, usage = asyncio.run(_generate_llm(cfg, chunks, api_key, progress))
        from .llm_client import LLMError
        from .prompting import ParseError, parse_pairs

        for ch, task_type, tpl, res in results:
            if isinstance(res, LLMError):
                failures += 1
                rejects.reject(f"llm_{res.reason}", id=ch.chunk_id, stage="generate", detail=res.detail,
                               task_type=task_type)
                continue
            try:
                pairs, salvaged = parse_pairs(res.content)
            except ParseError as e:
                reason = "truncated_output" if res.finish_reason == "length" else "unparseable_output"
                rejects.reject(reason, id=ch.chunk_id, stage="parse", detail=str(e), task_type=task_type,
                               output=res.content[:500])
                continue
            meta = {"synth.generator": "llm", "synth.model": cfg.llm.model, "synth.template": tpl.name,
                    "synth.template_sha256": tpl.sha256, "synth.request": res.key[:16],
                    "synth.finish_reason": res.finish_reason}
            if salvaged:
                meta["synth.salvaged"] = True
            if task_type == "report":
                pairs = pairs[:1]
            for p in pairs[: cfg.prompts.pairs_per_chunk]:
                raw.append((ch, task_type, p, meta))

    items = _validate(cfg, raw, rejects)
    new = store.add_items(items)
    log.info("%d candidate pairs, %d valid items, %d new in the review store", len(raw), len(items), new)
    return {"documents": len(docs), "chunks": len(chunks), "chunks_total": n_all, "candidates": len(raw), "valid_items": len(items),
            "new_items": new, "usage": usage, "failures": failures,
            "tokenizer": tokenizer}


async def _generate_llm(cfg: SynthConfig, chunks, api_key: str, progress):
    from .llm_client import LLMClient, LLMError
    from .prompting import load_template
    from .request_cache import RequestCache

    qa_tpl = load_template(cfg.prompts.qa_template)
    rep_tpl = load_template(cfg.prompts.report_template)
    cache = RequestCache(cfg.cache_path)
    client = LLMClient(cfg.llm, api_key, cache)
    jobs = []
    for ch in chunks:
        jobs.append((ch, "qa", qa_tpl))
        if wants_report(ch.chunk_id, cfg.prompts.report_fraction):
            jobs.append((ch, "report", rep_tpl))

    bar = None
    if callable(progress):  # a tqdm-like bar factory, e.g. the soaes console's rich progress
        bar = progress(total=len(jobs), desc="LLM requests", unit="req")
    elif progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="LLM requests", unit="req", disable=None)

    async def one(ch, task_type, tpl):
        msgs = tpl.render(title=ch.title, heading=ch.heading or "（无）", text=ch.text,
                          n_pairs=cfg.prompts.pairs_per_chunk)
        try:
            res = await client.complete(msgs)
        except LLMError as e:
            res = e
        if bar is not None:
            bar.update(1)
        return ch, task_type, tpl, res

    try:
        results = await asyncio.gather(*(one(*j) for j in jobs))
    finally:
        await client.aclose()
        cache.close()
        if bar is not None:
            bar.close()
    usage = client.usage.as_dict()
    usage.update({"model": cfg.llm.model, "base_url": cfg.llm.base_url, "max_concurrency": cfg.llm.max_concurrency})
    return results, usage


def _validate(cfg: SynthConfig, raw, rejects: RejectsWriter) -> list[QAItem]:
    from .validation import NearDuplicateIndex, char_ngrams, check_pair

    v = cfg.validation
    dedup = NearDuplicateIndex(v.dedup_threshold, v.dedup_num_perm, v.dedup_ngram, seed=cfg.split.seed)
    origin = "rules" if cfg.generator == "rules" else "synthetic"
    items: list[QAItem] = []
    seen: set[str] = set()
    grams: dict[str, set[str]] = {}
    for ch, task_type, pair, meta in raw:
        if ch.chunk_id not in grams:
            grams = {ch.chunk_id: char_ngrams(ch.text, v.ngram)}  # pairs of one chunk are consecutive
        reason, score = check_pair(pair, grams[ch.chunk_id], task_type=task_type, min_question_chars=v.min_question_chars,
                                   min_answer_chars=v.min_answer_chars, ngram=v.ngram, min_grounding=v.min_grounding)
        if reason:
            rejects.reject(reason, id=ch.chunk_id, stage="validate", question=str(pair.get("question"))[:200],
                           grounding=round(score, 4))
            continue
        q, a = pair["question"].strip(), pair["answer"].strip()
        item_id = make_item_id(origin, ch.chunk_id, task_type, q)
        if item_id in seen:
            rejects.reject("duplicate_question", id=item_id, stage="dedup")
            continue
        dup_of = dedup.add(item_id, q + "\n" + a)
        if dup_of:
            rejects.reject("near_duplicate", id=item_id, stage="dedup", duplicate_of=dup_of, question=q[:200])
            continue
        seen.add(item_id)
        md = dict(meta)
        md.update({"quality.grounding": round(score, 4), "synth.chunk_index": ch.index, "synth.heading": ch.heading})
        items.append(QAItem(item_id=item_id, task_type=task_type, origin=origin, question=q, answer=a,
                            doc_id=ch.doc_id, doc_group=ch.group, chunk_id=ch.chunk_id, title=ch.title,
                            context=ch.text, metadata=md))
    return items


def _auto_approve(cfg: SynthConfig, store) -> None:
    origins = {"rules", "synthetic"} if not cfg.review.required else set(cfg.review.auto_approve_origins)
    if not origins:
        return
    comment = "review.required is false" if not cfg.review.required else "auto_approve_origins"
    with store.batch():  # one transaction, not one per item
        for s in store.list_pending():
            if s.item.origin in origins:
                store.record_decision(s.item.item_id, "accept", "auto", channel="auto", comment=comment)


# ---- build: splits, shards, manifests ----------------------------------------------------------------

def _build(cfg: SynthConfig, store, expert_items: list[QAItem], gen: dict[str, Any], config_text: str,
           command: str | None, fingerprint: str, rejects: RejectsWriter, t0: float) -> dict[str, Any]:
    from corpora_manifests.provenance import make_provenance
    from corpora_manifests.shards import SFT_SCHEMA, ShardWriter
    from corpora_manifests.tokenizer import count_tokens, tokenizer_info

    from .splits import SPLITS, assign_splits, check_disjoint

    tokenizer = gen["tokenizer"]
    out = Path(cfg.output_dir)
    rows: list[tuple[QAItem, str, dict[str, Any]]] = []  # item, final answer, review metadata
    for s in store.iter_approved():
        decisions = store.decisions_for(s.item.item_id)
        rows.append((s.item, s.final_answer or s.item.answer, {
            "review.status": "approved", "review.edited": bool(s.final_answer and s.final_answer != s.item.answer),
            "review.annotators": sorted({d.annotator for d in decisions}),
        }))
    approved_ids = {r[0].item_id for r in rows}
    for it in expert_items:
        if it.item_id not in approved_ids:
            rows.append((it, it.answer, {"review.status": "expert"}))
    rows.sort(key=lambda r: r[0].item_id)

    group_tasks: dict[str, Counter] = {}
    for it, _, _ in rows:
        group_tasks.setdefault(it.doc_group, Counter())[it.task_type] += 1
    fractions = {"train": cfg.split.train, "dev": cfg.split.dev, "test": cfg.split.test}
    existing = store.split_assignments(cfg.split.seed)
    assignment = assign_splits(group_tasks, fractions, cfg.split.seed, existing)
    store.save_split_assignments(cfg.split.seed, {g: a for g, a in assignment.items() if g not in existing})
    leaks = check_disjoint((it.doc_group, assignment[it.doc_group][0]) for it, _, _ in rows)
    if leaks:  # cannot happen by construction; a guard against future edits
        raise RuntimeError(f"document groups in more than one split: {sorted(leaks)[:5]}")

    system = cfg.output.system_prompt
    conversations = []
    for it, answer, review_md in rows:
        msgs = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": it.question}, {"role": "assistant", "content": answer}]
        conversations.append(msgs)
    rendered = [tokenizer.apply_chat_template(m, tokenize=False) for m in conversations]
    n_tokens = count_tokens(tokenizer, rendered)

    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    comp: dict[str, Counter] = {s: Counter() for s in SPLITS}
    for (it, answer, review_md), msgs, nt in zip(rows, conversations, n_tokens):
        split = assignment[it.doc_group][0]
        md = {k: v for k, v in it.metadata.items()}
        md.update(review_md)
        md.update({"synth.origin": it.origin, "synth.task_type": it.task_type, "synth.doc_id": it.doc_id,
                   "synth.doc_group": it.doc_group, "synth.chunk_id": it.chunk_id, "synth.title": it.title,
                   "synth.split": split})
        source = {"synthetic": f"synthetic:{cfg.llm.model}", "rules": "rules", "expert": "expert"}[it.origin]
        by_split[split].append({"id": it.item_id, "messages": msgs, "source": source, "n_tokens": nt, "metadata": md})
        comp[split][f"{it.origin}/{it.task_type}"] += 1

    tok_info = tokenizer_info(tokenizer)
    usage = dict(gen.get("usage") or {})
    usage["generator"] = cfg.generator
    prov = make_provenance(config=cfg.model_dump(mode="json"), config_text=config_text, command=command, usage=usage,
                           hashed=synth_effective_config(cfg))
    store_counts = store.status_counts()
    doc_groups = {s: sorted({r["metadata"]["synth.doc_group"] for r in by_split[s]}) for s in SPLITS}
    stats = {
        "synthesis": {
            "fingerprint": fingerprint, "generator": cfg.generator, "documents": gen["documents"],
            "chunks": gen["chunks"], "chunks_total": gen["chunks_total"], "candidates": gen["candidates"],
            "valid_items": gen["valid_items"],
            "new_items": gen["new_items"], "generation_failures": gen["failures"],
            "review": store_counts, "expert_items": len(expert_items),
            # who decided: a demo's automatic approvals stay visibly labelled in the manifest
            "review_annotators": {a["annotator"]: a["items"] for a in store.annotators()},
            "split_composition": {s: dict(comp[s]) for s in SPLITS},
            "split_documents": {s: len(doc_groups[s]) for s in SPLITS},
            "seconds": round(time.time() - t0, 2),
        },
        "rejects": dict(rejects.counts),
    }
    sources = [Source(name=cfg.source.name, uri=str(cfg.source.path), licence=cfg.source.licence,
                      counts={"documents": gen["documents"], "chunks": gen["chunks"]})]
    for e in cfg.expert:
        sources.append(Source(name=f"expert:{Path(e.path).name}", uri=str(e.path),
                              counts={"items": sum(1 for it in expert_items if it.metadata.get('synth.expert_file') == Path(e.path).name)}))

    results = {}
    for stage, dirname, splits in (("sft_stage2", "sft_stage2", ("train",)), ("eval", "eval", ("dev", "test"))):
        target = out / dirname
        tmp = out / f".{dirname}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        shards = []
        for split in splits:
            with ShardWriter(tmp, schema=SFT_SCHEMA, prefix=f"data/{split}/part", split=split,
                             target_bytes=cfg.output.shard_target_bytes) as w:
                w.write_many(by_split[split])
            shards += w.shards
        manifest = Manifest(name=f"{cfg.name}_{stage}", stage=stage, producer=prov, tokenizer=tok_info,
                            sources=sources, shards=shards, stats=stats)
        manifest.write(tmp)
        # swap in the finished directory: a reader sees the old run or the new one, never a mix
        if target.exists():
            old = out / f".{dirname}.old"
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
        results[stage] = manifest
    return {"stats": stats, "manifests": results, "by_split": by_split, "out": out}


def _write_report(out: Path, built: dict[str, Any]) -> None:
    from corpora_manifests.models import atomic_write_text

    stats = built["stats"]
    atomic_write_text(out / "stats.json", json.dumps(stats, ensure_ascii=False, indent=2))
    try:
        from corpora_manifests.report import esc, img, kv_table, png, pyplot, write_page

        plt = pyplot()
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        comp = stats["synthesis"]["split_composition"]
        keys = sorted({k for c in comp.values() for k in c})
        bottom = [0] * len(comp)
        for k in keys:
            vals = [comp[s].get(k, 0) for s in comp]
            axes[0].bar(list(comp), vals, bottom=bottom, label=k)
            bottom = [b + v for b, v in zip(bottom, vals)]
        axes[0].set_title("items per split (origin/task)")
        if keys:
            axes[0].legend(fontsize=7)
        grounding = [r["metadata"].get("quality.grounding") for rs in built["by_split"].values() for r in rs]
        grounding = [g for g in grounding if g is not None]
        axes[1].hist(grounding, bins=20, range=(0, 1))
        axes[1].set_title("answer grounding (char 3-gram overlap)")
        fig.tight_layout()
        s = stats["synthesis"]
        summary = {k: s[k] for k in ("documents", "chunks", "candidates", "valid_items") if k in s}
        summary.update({f"review: {k}": v for k, v in (s.get("review") or {}).items() if isinstance(v, int)})
        write_page(out / "report.html", "SFT stage 2 synthesis",
                   kv_table(summary) + f"<h2>{esc('Splits and grounding')}</h2>" + img("splits", png(fig)), stats)
    except Exception as e:  # noqa: BLE001 - the report is a convenience; the run's outputs stand
        log.warning("could not write report.html: %s", e)
