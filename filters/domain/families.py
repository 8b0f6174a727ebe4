"""Every labelled source in ``../shared/data`` grouped into *source families* (for leave-one-family-out).

A family is a kind of text the classifier may meet in a pool it never saw: news titles, exam
questions, scientific abstracts, app descriptions, instructions/dialogues, statutes/policy. A
model that only learned "statute prose = law" or "multiple choice = law" fails on a family it
was not trained on; leave-one-family-out evaluation (``filters.domain.lofo``) measures exactly
that.

Labels follow each folder's ``meta.json`` ``domain_map`` (``ambiguous`` classes are left out) and
map to ``finance, law, business, politics, other``. Instruction records are represented by their
question first (``question\\nanswer``): the classifier reads the first 128 characters, so a long
answer never decides. ShareGPT and Alpaca are *not* here: they are unlabelled, and they are the
pool whose kept-set precision is measured (benchmarks/domain_pool_precision.py).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

from corpora_manifests.errors import UserError

FAMILIES = ("news_titles", "exam", "abstracts", "apps", "instructions", "statutes_policy")

CSLDCP_IN = {"法学": "law", "政治学": "politics", "公共管理": "politics", "应用经济学": "finance",
             "理论经济学": "finance", "农林经济管理": "finance", "工商管理": "business"}
IFLYTEK_IN = {"政务": "politics", "经营": "business"}  # the other in-domain apps (banking, payment …) → finance
THUC_IN = {"finance": "finance", "stocks": "finance", "politics": "politics"}
TNEWS_IN = {"news_finance": "finance", "news_stock": "finance"}
# LawBench tasks that are exam questions (multiple choice); the rest are legal-document tasks
LAWBENCH_EXAM = {"1-2", "3-6", "2-8"}
# BELLE eval categories that read like exam items (word problems, reading comprehension, classification)
BELLE_EXAM = {"math", "closed qa", "closed\xa0qa", "classification"}


def _jsonl(path: Path) -> Iterator[dict]:
    if not path.exists():
        raise UserError(f"shared data file not found: {path} (leave-one-family-out needs ../shared/data)")
    from corpora_manifests.jsonl import records

    yield from records(path)


def _qa(question: str, answer: str = "") -> str:
    """What the classifier reads of a Q&A record: ``filters.text.domain_text`` (question first)."""
    from ..text import domain_text

    return domain_text([{"role": "user", "content": question or ""}, {"role": "assistant", "content": answer or ""}])


def _messages_text(msgs: list) -> str:
    user, bot = [], []
    for m in msgs:
        if not isinstance(m, dict):
            continue
        role = m.get("from") or m.get("role")
        val = m.get("value") or m.get("content") or ""
        (user if role in ("human", "user") else bot).append(val)
    return _qa("\n".join(user[:1]), "\n".join(bot[:1]))


def _rec(family: str, source: str, rid: str, text: str, label: str) -> dict:
    return {"id": rid, "text": text, "label": label, "source": source, "family": family}


def iter_family_records(data: str | Path, max_statute_chunks: int = 3000) -> Iterator[dict]:
    """All labelled records ``{id, text, label, source, family}`` (ambiguous classes left out)."""
    from .trainset import CORE_LAW_CATEGORIES, _chunks, _spread

    data = Path(data)
    if not data.exists():
        raise UserError(f"shared data directory not found: {data}")
    # ---- news titles
    for r in _jsonl(data / "thucnews_titles" / "data.jsonl"):
        lab = THUC_IN.get(r["label"]) or ("other" if r.get("domain") == "out" else None)
        if lab:
            yield _rec("news_titles", "thucnews_titles", r["id"], r["text"], lab)
    for r in _jsonl(data / "tnews_fewclue" / "data.jsonl"):
        lab = TNEWS_IN.get(r["label"]) or ("other" if r.get("domain") == "out" else None)
        if lab:
            yield _rec("news_titles", "tnews_fewclue", r["id"], r["text"], lab)
    # ---- exam questions (multiple choice)
    for r in _jsonl(data / "disc_law_eval" / "mcq.jsonl"):
        opts = "\n".join(f"{k}. {v}" for k, v in (r.get("options") or {}).items())
        lab = "finance" if r.get("exam") in ("pfe", "cpa") else "law"
        yield _rec("exam", "disc_law_mcq", r["id"], f"{r['question']}\n{opts}", lab)
    for r in _jsonl(data / "lawbench" / "data.jsonl"):
        if r["task"] in LAWBENCH_EXAM:
            yield _rec("exam", "lawbench_mcq", r["id"], r.get("question", ""), "law")
    for r in _jsonl(data / "belle_eval_set" / "data.jsonl"):
        if r.get("category") in BELLE_EXAM:
            yield _rec("exam", "belle_eval_exam_like", r["id"], _qa(r["instruction"], r.get("response", "")), "other")
    # ---- scientific abstracts
    for r in _jsonl(data / "csldcp_fewclue" / "data.jsonl"):
        lab = CSLDCP_IN.get(r["label"]) or ("other" if r.get("domain") == "out" else None)
        if lab:
            yield _rec("abstracts", "csldcp_fewclue", r["id"], r["text"], lab)
    # ---- app descriptions
    for r in _jsonl(data / "iflytek_fewclue" / "data.jsonl"):
        d = r.get("domain")
        lab = IFLYTEK_IN.get(r["label"], "finance") if d == "in" else ("other" if d == "out" else None)
        if lab:
            yield _rec("apps", "iflytek_fewclue", r["id"], r["text"], lab)
    # ---- instructions / dialogues (question first)
    for r in _jsonl(data / "disc_fin_sft_samples" / "data.jsonl"):
        yield _rec("instructions", "disc_fin_sft", r["id"], _qa(r["instruction"], r.get("response", "")), "finance")
    for r in _jsonl(data / "disc_fin_eval" / "data.jsonl"):
        yield _rec("instructions", "disc_fin_eval", r["id"], _qa(r["question"], str(r.get("reference", ""))), "finance")
    for r in _jsonl(data / "disc_law_eval" / "data.jsonl"):
        yield _rec("instructions", "disc_law_qa", r["id"], _qa(r["question"], r.get("reference", "")), "law")
    for r in _jsonl(data / "lawbench" / "data.jsonl"):
        if r["task"] == "3-8":  # legal consultation questions from the public
            yield _rec("instructions", "lawbench_consult", r["id"], _qa(r["question"], r.get("reference", "")), "law")
    for r in _jsonl(data / "medical_sft_1k_ood" / "data.jsonl"):
        yield _rec("instructions", "medical_sft", r["id"], _messages_text(r["messages"]), "other")
    for r in _jsonl(data / "belle_seed_tasks" / "data.jsonl"):
        yield _rec("instructions", "belle_seed", r["id"], _qa(r["instruction"], r.get("response", "")), "other")
    for r in _jsonl(data / "belle_eval_set" / "data.jsonl"):
        if r.get("category") not in BELLE_EXAM:
            yield _rec("instructions", "belle_eval", r["id"], _qa(r["instruction"], r.get("response", "")), "other")
    # ---- statutes and policy (in-domain only)
    n = 0
    for r in _jsonl(data / "lawrefbook_laws" / "laws.jsonl"):
        if r.get("category") not in CORE_LAW_CATEGORIES and str(r.get("domain_hint")) != "True":
            continue
        text = r["text"].split("<!-- INFO END -->", 1)[-1]
        for j, c in enumerate(_spread(_chunks(text), 2)):
            if n >= max_statute_chunks:
                break
            n += 1
            yield _rec("statutes_policy", "lawrefbook_laws", f"{r['id']}#{j}", c, "law")
    for r in _jsonl(data / "govcn_policy_html" / "data.jsonl"):
        for j, c in enumerate(_chunks(r["text"])):
            yield _rec("statutes_policy", "govcn_policy", f"{r['id']}#{j}", c, "politics")


def in_valid(rid: str, fraction: float = 0.15) -> bool:
    """Deterministic validation split by record id (model choices and thresholds only)."""
    return int(hashlib.md5(("valid:" + rid).encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


# Unlabelled instruction pools used for self-training (pseudo-negatives): topic-diverse general
# instructions are what the labelled sets lack most. Alpaca-zh and ShareGPT are also the pool whose
# kept-set precision benchmarks/domain_pool_precision.py estimates: training on their
# pseudo-labels is transductive self-training, and the docs say so.
UNLABELLED_POOLS = ("alpaca_zh_carbonz0", "llamafactory_demo_sft", "sharegpt_zh_1k", "longwriter_prompts")
# formal expository prose that is not in-domain (an infectious-disease textbook): without it the only
# formal prose in training is statutes and policy, and "formal register" would mean "in-domain"
UNLABELLED_PROSE = (("mixed_lang_pretrain_text", "data/pretrain/fever.txt"),)


def iter_unlabelled(data: str | Path, max_records: int = 30_000, licence: str = "any") -> Iterator[dict]:
    """Chinese records of the unlabelled pools as ``{id, text, source}`` (text = ``domain_text``);
    ``licence="permissive"``: only the pools ``licences.FOLDER_LICENCE`` allows in a shipped model."""
    from .licences import FOLDER_LICENCE

    data = Path(data)
    n = 0

    def allowed(name: str) -> bool:
        return licence == "any" or FOLDER_LICENCE[name][1] != "no"

    for name in filter(allowed, UNLABELLED_POOLS):
        for r in _jsonl(data / name / "data.jsonl"):
            if n >= max_records:
                return
            if r.get("lang") not in (None, "zh"):
                continue
            if isinstance(r.get("messages"), list):
                text = _messages_text(r["messages"])
            else:
                text = _qa(r.get("instruction", "") + ("\n" + r["input"] if r.get("input") else ""),
                           r.get("response") or r.get("output") or "")
            if text.strip():
                n += 1
                yield {"id": r["id"], "text": text, "source": name}
    for name, src in UNLABELLED_PROSE:
        if not allowed(name):
            continue
        for r in _jsonl(data / name / "data.jsonl"):
            if r.get("source") == src and r.get("lang") == "zh" and len(r.get("text", "")) >= 40:
                yield {"id": r["id"], "text": r["text"], "source": f"{name}:{Path(src).stem}"}


def pseudo_negatives(unlabelled: list[dict], window: int = 512) -> list[dict]:
    """Lexicon-prior pseudo-labels: a pool record with no domain keyword at all (``baselines.KEYWORDS``,
    which hits ≥ 1 on 81 % of the in-domain exam questions and 31 % of in-domain news titles but
    is broad — 市场, 管理, 企业, 税, 党 …) is labelled ``other``; the rest stay unlabelled."""
    from .baselines import keyword_hits

    return [{**r, "label": "other", "family": "pool_pseudo", "source": r["source"] + ":pseudo_other"}
            for r in unlabelled if keyword_hits(r["text"], window) == 0]


def pseudo_positives(unlabelled: list[dict], min_net: int = 4, min_topic: int = 2, window: int = 160) -> list[dict]:
    """Lexicon-prior pseudo-positives: a pool record whose first ``window`` characters carry a strong
    net domain balance (keyword + topic hits − 2 × other-topic hits ≥ ``min_net``, ≥ ``min_topic``
    topic terms; ``stack.evidence``) is labelled with the domain its keywords name most (business
    terms count as finance: no permissive source is labelled business). The pools' colloquial
    in-domain requests are the register the labelled in-domain data lacks."""
    from .baselines import KEYWORDS
    from .stack import evidence

    groups = {"law": KEYWORDS[:20], "finance": KEYWORDS[20:53], "politics": KEYWORDS[53:]}
    ev = evidence([r["text"] for r in unlabelled], other=True, window=window)
    out = []
    for r, (kw, tp, _, ot) in zip(unlabelled, ev.tolist()):
        if kw + tp - 2 * ot >= min_net and tp >= min_topic:
            head = r["text"][:window]
            label = max(groups, key=lambda g: sum(head.count(w) for w in groups[g] if "." not in w))
            out.append({**r, "label": label, "family": "pool_pseudo", "source": r["source"] + ":pseudo_in"})
    return out
