"""LLM labelling of a sample of the user's own pool: ``soaes filters label POOL CONFIG --sample N``.

What the strongest curation pipelines do to adapt a domain filter to a new pool: an LLM labels a
sample, a small model learns it. Here:

1. the pool (any instruction format the readers know) is read and scored by the current domain
   model (``model``; default the shipped one);
2. a batch is chosen — ``stratified`` (the first batch): records spread evenly over P(in) bands ×
   sources, so rare-but-relevant regions are seen; ``uncertainty`` (later batches): the records
   whose P(in) is closest to the model's threshold (where a label changes the decision most);
   already-labelled records are never chosen again;
3. each chosen record's question (``filters.text.domain_text``) is sent to the configured
   OpenAI-compatible endpoint through the synthesis LLM client (request cache: a re-run or a
   resumed run never pays for a request twice; retries with backoff on 429/5xx/timeouts/broken
   bodies) with the versioned prompt ``prompt_version``; the answer must be JSON
   ``{"label": finance|law|business|politics|other, "rationale": "…"}``;
4. ``<output>/labels.jsonl`` gets one line per labelled record ``{id, text, label, rationale,
   prompt_version, llm_model, strategy, p_in}`` (appended: a killed run resumes); a record whose
   request failed or whose answer is not a valid label goes to ``<output>/rejects.jsonl`` with the
   reason — never silently lost.

``soaes filters train-domain --train <output>/labels.jsonl`` then trains and calibrates a model on
those labels (extra keys are ignored), and ``--model`` of the next ``label`` run points at it.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from corpora_manifests.errors import UserError
from synthesis.config import LLMConfig

LABELS = ("finance", "law", "business", "politics", "other")

# Versioned prompts: a label file records the version that produced each label; change the text →
# new version (old cached answers are keyed by the old text and are not reused for the new one).
PROMPTS: dict[str, str] = {
    "domain_label_v1": (
        "你是数据标注员。判断下面这条用户指令（或问题）属于哪个领域，只能从以下五类中选一个：\n"
        "finance（金融、经济、财会、税务、投资、保险、银行）\n"
        "law（法律、法规、司法、合同、权利义务、合规）\n"
        "business（企业经营、管理、市场营销、商业模式、人力资源）\n"
        "politics（政治、政府、公共政策、公共管理、外交、国际关系）\n"
        "other（以上都不是，例如数学、编程、医学、文学创作、生活常识、科学、娱乐）\n"
        "判断依据是指令本身讨论的主题；只是顺带提到某个领域词语的，归为 other。\n"
        "只输出一个 JSON 对象，不要输出其他内容：{{\"label\": \"<类别>\", \"rationale\": \"<一句话理由>\"}}\n\n"
        "<待分类>\n{text}\n</待分类>"
    ),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelConfig(_Strict):
    output: str = "build/domain_labels"
    llm: LLMConfig = Field(default_factory=LLMConfig)  # the synthesis client's own schema
    prompt_version: str = "domain_label_v1"
    model: str | None = None  # domain model used for stratification/uncertainty; None: the shipped one
    sample: int = Field(default=200, ge=1)
    strategy: Literal["stratified", "uncertainty"] = "stratified"
    bands: list[float] = Field(default_factory=lambda: [0.1, 0.3, 0.5, 0.7, 0.9])
    max_chars: int = Field(default=600, ge=50)  # of the question sent to the LLM
    format: str = "auto"
    seed: int = 0


_JSON_OBJ = re.compile(r"\{.*\}", re.S)


def parse_label(content: str) -> tuple[str, str]:
    """(label, rationale) from the LLM's answer; ValueError with a reason otherwise."""
    m = _JSON_OBJ.search(content or "")
    if not m:
        raise ValueError("no JSON object in the answer")
    try:
        obj = json.loads(m.group(0))
    except json.JSONDecodeError:
        raise ValueError("answer is not valid JSON") from None
    label = str(obj.get("label", "")).strip().lower()
    if label not in LABELS:
        raise ValueError(f"label {label!r} is not one of {', '.join(LABELS)}")
    return label, str(obj.get("rationale", "")).strip()[:300]


def _h(key: str, seed: int) -> int:
    return int(hashlib.md5(f"{seed}:{key}".encode("utf-8")).hexdigest()[:12], 16)


def choose(items: list[dict], n: int, strategy: str, threshold: float, bands: list[float], seed: int = 0) -> list[dict]:
    """``n`` items: stratified over P(in) bands × sources (round robin, hash order inside a stratum),
    or the ``n`` closest to the threshold."""
    if strategy == "uncertainty":
        return sorted(items, key=lambda r: (abs(r["p_in"] - threshold), _h(r["id"], seed)))[:n]
    strata: dict[int, dict[str, list[dict]]] = {}
    for r in items:
        band = sum(r["p_in"] >= b for b in bands)
        strata.setdefault(band, {}).setdefault(r["source"], []).append(r)
    for by_src in strata.values():
        for src in by_src:
            by_src[src].sort(key=lambda r: _h(r["id"], seed))
    # round robin over the bands first (n smaller than bands x sources must still reach the high
    # bands), inside a band the source taken least so far
    taken: Counter = Counter()
    out: list[dict] = []
    while len(out) < n and any(q for by_src in strata.values() for q in by_src.values()):
        for band in sorted(strata):
            live = [src for src, q in strata[band].items() if q]
            if live and len(out) < n:
                src = min(live, key=lambda s: (taken[s], s))
                taken[src] += 1
                out.append(strata[band][src].pop(0))
    return out


def read_pool(paths: list[Path], fmt: str = "auto") -> tuple[list[dict], Counter]:
    from .readers import Malformed, read_samples, sample_files
    from .text import domain_text

    items, bad = [], Counter()
    files = sample_files([str(p) for p in paths])
    if not files:
        raise UserError(f"no instruction files found at {', '.join(map(str, paths))}")
    for f in files:
        for s in read_samples(f, fmt):
            if isinstance(s, Malformed):
                bad[s.reason] += 1
                continue
            text = domain_text(s.messages)
            if text.strip():
                items.append({"id": s.id, "source": s.source or f.stem, "text": text})
    return items, bad


async def _label_all(cfg: LabelConfig, chosen: list[dict], api_key: str, out: Path, strategy: str) -> dict[str, Any]:
    from synthesis.llm_client import LLMClient, LLMError
    from synthesis.request_cache import RequestCache

    cache = RequestCache(cfg.llm.cache_path or (out / "cache" / "llm_cache.sqlite"))
    client = LLMClient(cfg.llm, api_key, cache)
    template = PROMPTS[cfg.prompt_version]
    counts: Counter = Counter()

    async def one(r: dict) -> tuple[dict, dict | None, str | None]:
        msgs = [{"role": "user", "content": template.format(text=r["text"][: cfg.max_chars])}]
        try:
            res = await client.complete(msgs)
        except LLMError as e:
            return r, None, f"llm_{e.reason}"
        try:
            label, why = parse_label(res.content)
        except ValueError as e:
            return r, None, f"bad_label: {e}"
        return r, {"label": label, "rationale": why, "cached": res.cached}, None

    try:
        with (out / "labels.jsonl").open("a", encoding="utf-8") as lf, \
                (out / "rejects.jsonl").open("a", encoding="utf-8") as rf:
            for fut in asyncio.as_completed([one(r) for r in chosen]):
                r, ans, err = await fut
                if err:
                    counts["rejected"] += 1
                    rf.write(json.dumps({"id": r["id"], "source": r["source"], "reason": err,
                                         "excerpt": r["text"][:200]}, ensure_ascii=False) + "\n")
                    rf.flush()
                    continue
                counts["labelled"] += 1
                counts[f"label_{ans['label']}"] += 1
                lf.write(json.dumps({"id": r["id"], "source": r["source"], "text": r["text"], "label": ans["label"],
                                     "rationale": ans["rationale"], "prompt_version": cfg.prompt_version,
                                     "llm_model": cfg.llm.model, "strategy": strategy,
                                     "p_in": round(r["p_in"], 4)}, ensure_ascii=False) + "\n")
                lf.flush()  # a killed run keeps every label written so far
    finally:
        await client.aclose()
    return {"counts": dict(counts), "usage": client.usage.as_dict()}


def label_pool(pool: list[Path], cfg: LabelConfig) -> dict[str, Any]:
    """Choose and label one batch; return a summary (counts, LLM usage, label distribution)."""
    from synthesis.llm_client import check_endpoint, resolve_api_key

    from .domain.model import DomainModel

    if cfg.prompt_version not in PROMPTS:
        raise UserError(f"unknown prompt_version {cfg.prompt_version!r}; known: {', '.join(PROMPTS)}")
    for p in pool:
        if not Path(p).exists():
            raise UserError(f"pool not found: {p}")
    _, api_key = resolve_api_key(cfg.llm)
    check_endpoint(cfg.llm, api_key)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    items, bad = read_pool(pool, cfg.format)
    done = set()
    if (out / "labels.jsonl").exists():
        from corpora_manifests.jsonl import records

        # a line cut by a kill is skipped: that record is simply labelled again (from the cache)
        done.update(r["id"] for r in records(out / "labels.jsonl") if "id" in r)
    todo = [r for r in items if r["id"] not in done]
    model = DomainModel(cfg.model)
    for r, p in zip(todo, model.predict([r["text"] for r in todo])):
        r["p_in"] = p.p_in
    chosen = choose(todo, cfg.sample, cfg.strategy, model.threshold, cfg.bands, cfg.seed)
    summary = asyncio.run(_label_all(cfg, chosen, api_key, out, cfg.strategy)) if chosen else {"counts": {}}
    summary.update({"pool_records": len(items), "malformed": dict(bad), "already_labelled": len(done),
                    "chosen": len(chosen), "strategy": cfg.strategy, "prompt_version": cfg.prompt_version,
                    "labels_file": str(out / "labels.jsonl")})
    return summary
