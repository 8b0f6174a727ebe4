"""Assemble labelled domain data from ../shared/data: training, validation and held-out sets.

Label mapping (source → label; ``in`` = finance, law, business, politics):

=====================================  ===========  ==============================================
source (folder)                        label        licence / use
=====================================  ===========  ==============================================
lawrefbook_laws (statute articles)     law          outside copyright (Art. 5) — shipped model
govcn_policy_html (State Council docs) politics     outside copyright (Art. 5) — shipped model
disc_fin_sft_samples (train half)      finance      Apache-2.0 — shipped model
disc_fin_eval (train half)             finance      Apache-2.0 — shipped model
disc_law_eval short answers, MCQ       law (MCQ of  Apache-2.0 — shipped model
  (train halves)                       fund/CPA
                                       exams:
                                       finance)
medical_sft_1k_ood (train half)        other        Apache-2.0 — shipped model
belle_seed_tasks, belle_eval_set       other        ODC-By — shipped model
  (train halves)
sharegpt_zh_1k                         other        Apache-2.0 — shipped model
thucnews_titles                        finance/     no licence — research model only
                                       politics/
                                       other
tnews_fewclue, iflytek_fewclue         finance/     no licence — research model only
                                       politics/
                                       other
csldcp_fewclue (train half)            law/politics no licence — research model only
                                       /finance/
                                       business/
                                       other
=====================================  ===========  ==============================================

``ambiguous`` classes of each ``meta.json`` ``domain_map`` (realty, society, world, military, …)
are left out of training and evaluation. No permissive source is labelled *business*: the shipped
model has the labels finance, law, politics, other, and business questions reach it through finance
and company/enterprise law; the research model adds 工商管理 abstracts as ``business``.

The held-out set (``in``: LawBench items, DISC-Law short answers and exam questions, DISC-Fin
eval questions and the held-out half of the finance SFT samples; ``out``: the held-out halves of
the medical and BELLE sets and abstracts of non-domain disciplines) is never trained on (LawBench not at all): halves are
split by a hash of the record id, and every training example sharing a normalised 30-character
n-gram (or its whole normalised text) with a held-out item is removed — the count is reported.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from corpora_manifests.errors import UserError

from ..decontam import NgramIndex
from ..text import dialogue_text, normalise_for_match

CSLDCP_IN = {"法学": "law", "政治学": "politics", "公共管理": "politics", "应用经济学": "finance",
             "理论经济学": "finance", "农林经济管理": "finance", "工商管理": "business"}
IFLYTEK_POLITICS = {"政务"}
CORE_LAW_CATEGORIES = {"宪法", "宪法相关法", "民法典", "民法商法", "刑法", "经济法", "行政法", "社会法",
                       "诉讼与非诉讼程序法", "司法解释", "案例"}
# Sources whose labels are curated enough to calibrate a threshold on. ShareGPT is a training
# negative only: it is unlabelled general chat and holds real finance/law conversations.
VALID_SOURCES = {"disc_law_eval", "disc_law_mcq", "disc_fin_eval", "disc_fin_sft_samples", "medical_sft_1k_ood",
                 "belle_seed_tasks", "belle_eval_set", "thucnews_titles", "tnews_fewclue",
                 "iflytek_fewclue", "csldcp_fewclue"}


def heldout_half(record_id: str) -> bool:
    """Deterministic half split by id: True → held-out (evaluation), False → training."""
    return int(hashlib.md5(record_id.encode("utf-8")).hexdigest()[:8], 16) % 2 == 0


def _jsonl(path: Path) -> Iterator[dict]:
    if not path.exists():
        raise UserError(f"shared data file not found: {path}")
    from corpora_manifests.jsonl import records

    yield from records(path)


def _qa_text(user: str, answer: str) -> str:
    return dialogue_text([{"role": "user", "content": user}, {"role": "assistant", "content": answer or ""}])


def _sft_text(rec: dict) -> str:
    if isinstance(rec.get("messages"), list):
        from ..readers import RecordError, normalise

        try:
            return dialogue_text(normalise(rec).messages)
        except RecordError:  # e.g. an unanswered last turn: the text is still usable for labels
            return "\n".join(str(m.get("value", m.get("content", ""))) for m in rec["messages"] if isinstance(m, dict))
    return _qa_text(rec.get("instruction", "") + ("\n" + rec["input"] if rec.get("input") else ""),
                    rec.get("response") or rec.get("output") or "")


def _chunks(text: str, lo: int = 60, hi: int = 300) -> list[str]:
    """Paragraphs packed into chunks of lo..hi characters (statutes: about one article each)."""
    out, cur = [], ""
    for para in re.split(r"\n\s*\n|\n", text):
        para = para.strip()
        if not para or para.startswith("#") or para.startswith("<!--"):
            continue
        cur = f"{cur}\n{para}" if cur else para
        if len(cur) >= lo:
            out.append(cur[:hi])
            cur = ""
    if len(cur) >= lo:
        out.append(cur[:hi])
    return out


# ---------------------------------------------------------------- held-out evaluation set

def build_heldout(data: Path, per_lawbench_task: int = 40, n_mcq: int = 300, per_discipline: int = 12) -> list[dict]:
    rows: list[dict] = []
    lb = Counter()
    for r in _jsonl(data / "lawbench" / "data.jsonl"):
        if lb[r["task"]] < per_lawbench_task:
            lb[r["task"]] += 1
            rows.append({"id": r["id"], "text": _qa_text(f"{r.get('instruction', '')}\n{r.get('question', '')}",
                                                          r.get("reference", "")),
                         "label": "in", "source": "lawbench"})
    for r in _jsonl(data / "disc_law_eval" / "data.jsonl"):
        if heldout_half(r["id"]):
            rows.append({"id": r["id"], "text": _qa_text(r["question"], r.get("reference", "")), "label": "in",
                     "source": "disc_law_eval"})
    for i, r in enumerate(_jsonl(data / "disc_law_eval" / "mcq.jsonl")):
        if heldout_half(r["id"]) and i % max(1, 2563 // (2 * n_mcq)) == 0:
            opts = "\n".join(f"{k}. {v}" for k, v in (r.get("options") or {}).items())
            rows.append({"id": r["id"], "text": _qa_text(f"{r['question']}\n{opts}", str(r.get("answer", ""))),
                         "label": "in", "source": "disc_law_mcq"})
    for r in _jsonl(data / "disc_fin_eval" / "data.jsonl"):
        if heldout_half(r["id"]):
            rows.append({"id": r["id"], "text": _qa_text(r["question"], str(r.get("reference", ""))), "label": "in",
                     "source": "disc_fin_eval"})
    for r in _jsonl(data / "disc_fin_sft_samples" / "data.jsonl"):
        if heldout_half(r["id"]):
            rows.append({"id": r["id"], "text": _sft_text(r), "label": "in", "source": "disc_fin_sft"})
    for name in ("medical_sft_1k_ood", "belle_seed_tasks", "belle_eval_set"):
        for r in _jsonl(data / name / "data.jsonl"):
            if heldout_half(r["id"]):
                rows.append({"id": r["id"], "text": _sft_text(r), "label": "out", "source": name})
    per = Counter()
    for r in _jsonl(data / "csldcp_fewclue" / "data.jsonl"):
        if r.get("domain") == "out" and heldout_half(r["id"]) and per[r["label"]] < per_discipline:
            per[r["label"]] += 1
            rows.append({"id": r["id"], "text": r["text"], "label": "out", "source": "csldcp_out_disciplines"})
    return [r for r in rows if r["text"].strip()]


# ---------------------------------------------------------------- training examples

_ARTICLE = re.compile(r"^(第[一二三四五六七八九十百千零〇]+条)")
# Question templates that turn a statute article into an instruction-style example: users ask about
# laws in questions, not in statute prose, and a model trained on prose alone misses them.
_LAW_TEMPLATES = (
    "{law}{art}的内容是什么？",
    "请解释《{law}》{art}的规定。",
    "根据《{law}》，以下规定应如何理解？",
    "《{law}》对此是如何规定的？请结合条文说明。",
    "下面这条规定出自哪部法律法规？请简要分析其适用情形。",
)
_POLICY_TEMPLATES = (
    "请概括《{title}》中下面这段内容的要点。",
    "{title}提出了哪些要求？",
    "根据国务院文件《{title}》，地方政府和有关部门应当怎样落实？",
)


def _pick(key: str, options: tuple[str, ...]) -> str:
    return options[int(hashlib.md5(key.encode("utf-8")).hexdigest()[:6], 16) % len(options)]


def _spread(items: list, k: int) -> list:
    """k items spread evenly over the list (the opening articles of every law read alike)."""
    if len(items) <= k:
        return items
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def _shipped_examples(data: Path, max_law: int, law_chunks_per_doc: int) -> Iterator[dict]:
    n_law = 0
    for r in _jsonl(data / "lawrefbook_laws" / "laws.jsonl"):
        # Statutes regulate every subject (mines, schools, epidemics): a regulation on a technical
        # subject teaches the model that the subject is "law". Keep the legal codes, judicial
        # interpretations and cases, plus the regulations flagged economic/enterprise (domain_hint).
        if r.get("category") not in CORE_LAW_CATEGORIES and str(r.get("domain_hint")) != "True":
            continue
        text = r["text"].split("<!-- INFO END -->", 1)[-1]
        # Cases (指导性案例) and judicial interpretations carry the narrative style of legal questions.
        k = law_chunks_per_doc * (4 if r.get("category") in ("案例", "司法解释") else 1)
        for j, c in enumerate(_spread(_chunks(text), k)):
            if n_law >= max_law:
                break
            n_law += 1
            cid = f"{r['id']}#{j}"
            yield {"id": cid, "text": c, "label": "law", "source": "lawrefbook_laws"}
            m = _ARTICLE.match(c)
            q = _pick(cid, _LAW_TEMPLATES).format(law=r["law_name"], art=m.group(1) if m else "")
            yield {"id": cid + "q", "text": _qa_text(q, c), "label": "law", "source": "lawrefbook_laws:qa_template"}
    for r in _jsonl(data / "govcn_policy_html" / "data.jsonl"):
        for j, c in enumerate(_chunks(r["text"])):
            cid = f"{r['id']}#{j}"
            yield {"id": cid, "text": c, "label": "politics", "source": "govcn_policy_html"}
            if j % 2 == 0:
                q = _pick(cid, _POLICY_TEMPLATES).format(title=r["title"])
                yield {"id": cid + "q", "text": _qa_text(q, c), "label": "politics",
                       "source": "govcn_policy_html:qa_template"}
    for r in _jsonl(data / "disc_fin_sft_samples" / "data.jsonl"):
        if heldout_half(r["id"]):
            continue
        yield {"id": r["id"], "text": _sft_text(r), "label": "finance", "source": "disc_fin_sft_samples"}
        for j, (q, a) in enumerate(r.get("history") or []):  # earlier turns: more finance examples
            yield {"id": f"{r['id']}#h{j}", "text": _qa_text(q, a), "label": "finance", "source": "disc_fin_sft_samples"}
    # The other halves of the Apache-2.0 evaluation sets (DISC-Law, DISC-Fin): instruction-style
    # in-domain questions. LawBench is never trained on (its sources' terms vary): it stays a purely
    # out-of-distribution check.
    for r in _jsonl(data / "disc_law_eval" / "data.jsonl"):
        if not heldout_half(r["id"]):
            yield {"id": r["id"], "text": _qa_text(r["question"], r.get("reference", "")), "label": "law",
                   "source": "disc_law_eval"}
    for r in _jsonl(data / "disc_law_eval" / "mcq.jsonl"):
        if not heldout_half(r["id"]):
            opts = "\n".join(f"{k}. {v}" for k, v in (r.get("options") or {}).items())
            lab = "finance" if r.get("exam") in ("pfe", "cpa") else "law"
            yield {"id": r["id"], "text": _qa_text(f"{r['question']}\n{opts}", str(r.get("answer", ""))),
                   "label": lab, "source": "disc_law_mcq"}
    for r in _jsonl(data / "disc_fin_eval" / "data.jsonl"):
        if not heldout_half(r["id"]):
            yield {"id": r["id"], "text": _qa_text(r["question"], str(r.get("reference", ""))), "label": "finance",
                   "source": "disc_fin_eval"}
    for name in ("medical_sft_1k_ood", "belle_seed_tasks", "belle_eval_set"):
        for r in _jsonl(data / name / "data.jsonl"):
            if not heldout_half(r["id"]):
                yield {"id": r["id"], "text": _sft_text(r), "label": "other", "source": name}
    for r in _jsonl(data / "sharegpt_zh_1k" / "data.jsonl"):
        yield {"id": r["id"], "text": _sft_text(r), "label": "other", "source": "sharegpt_zh_1k"}


def _research_examples(data: Path) -> Iterator[dict]:
    for r in _jsonl(data / "thucnews_titles" / "data.jsonl"):
        lab = {"finance": "finance", "stocks": "finance", "politics": "politics"}.get(r["label"])
        if lab is None and r.get("domain") == "out":
            lab = "other"
        if lab:
            yield {"id": r["id"], "text": r["text"], "label": lab, "source": "thucnews_titles"}
    for r in _jsonl(data / "tnews_fewclue" / "data.jsonl"):
        lab = "finance" if r.get("domain") == "in" else ("other" if r.get("domain") == "out" else None)
        if lab:
            yield {"id": r["id"], "text": r["text"], "label": lab, "source": "tnews_fewclue"}
    for r in _jsonl(data / "iflytek_fewclue" / "data.jsonl"):
        d = r.get("domain")
        lab = ("politics" if r["label"] in IFLYTEK_POLITICS else "finance") if d == "in" else ("other" if d == "out" else None)
        if lab:
            yield {"id": r["id"], "text": r["text"], "label": lab, "source": "iflytek_fewclue"}
    for r in _jsonl(data / "csldcp_fewclue" / "data.jsonl"):
        if heldout_half(r["id"]):
            continue
        lab = CSLDCP_IN.get(r["label"]) or ("other" if r.get("domain") == "out" else None)
        if lab:
            yield {"id": r["id"], "text": r["text"], "label": lab, "source": "csldcp_fewclue"}


def build_trainset(data: str | Path, output: str | Path, research: bool = False, max_law: int = 5000,
                   law_chunks_per_doc: int = 2, binary_labels: bool = False, overlap_ngram: int = 30,
                   valid_fraction: float = 0.2) -> dict[str, Any]:
    """Write train.jsonl, valid.jsonl, heldout.jsonl and build.json into ``output``; return the stats."""
    from .train import binary, split_valid

    data = Path(data)
    if not data.exists():
        raise UserError(f"shared data directory not found: {data}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    heldout = build_heldout(data)
    index = NgramIndex(n=overlap_ngram, stride=1)
    held_norm = set()
    for r in heldout:
        index.add(r["text"], r["source"], r["id"])
        held_norm.add(normalise_for_match(r["text"]))
    examples = list(_shipped_examples(data, max_law, law_chunks_per_doc))
    if research:
        examples += list(_research_examples(data))
    kept, removed, seen = [], Counter(), set()
    for e in examples:
        norm = normalise_for_match(e["text"])
        if len(norm) < 4:
            removed["too_short"] += 1
            continue
        if norm in held_norm or index.find(e["text"]) is not None:
            removed[f"overlaps_heldout:{e['source']}"] += 1
            continue
        if norm in seen:
            removed["duplicate"] += 1
            continue
        seen.add(norm)
        if binary_labels:
            e = {**e, "label": binary(e["label"])}
        kept.append(e)
    # The validation split (threshold calibration) holds only instruction-style examples: statute
    # and policy chunks are trivially separable and would make every threshold look perfect.
    pairs = [(e["text"], e["label"]) for e in kept if e["source"] in VALID_SOURCES]
    _, va_pairs = split_valid(pairs, valid_fraction)
    va_set = set(va_pairs)
    train_rows = [e for e in kept if (e["text"], e["label"]) not in va_set]
    valid_rows = [e for e in kept if (e["text"], e["label"]) in va_set]

    def dump(rows: list[dict], name: str) -> None:
        with (out / name).open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    dump(train_rows, "train.jsonl")
    dump(valid_rows, "valid.jsonl")
    dump(heldout, "heldout.jsonl")
    stats = {
        "research": research,
        "train": dict(Counter(e["label"] for e in train_rows)),
        "train_by_source": dict(Counter(e["source"] for e in train_rows)),
        "valid": dict(Counter(e["label"] for e in valid_rows)),
        "heldout": dict(Counter(e["label"] for e in heldout)),
        "heldout_by_source": dict(Counter(e["source"] for e in heldout)),
        "removed_from_training": dict(removed),
        "overlap_rule": f"normalised text equal to, or sharing a {overlap_ngram}-char n-gram with, a held-out item",
    }
    (out / "build.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")
    return stats
