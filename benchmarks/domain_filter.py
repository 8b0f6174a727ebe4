"""Domain filtering benchmark: quality on held-out instructions and classification throughput.

    .venv/bin/python benchmarks/domain_filter.py [--data ../shared/data] [--model filters/models/domain_zh.ftz]
                                                 [--repeats 5] [--json out.json]

Quality: binary in-domain P/R/F1 on the held-out instruction set of
``filters.domain.trainset.build_heldout`` (in: LawBench, DISC-Law, DISC-Fin questions and held-out
finance SFT samples; out: held-out medical and BELLE samples, abstracts of non-domain
disciplines), none of which the shipped model was trained on — for our classifier, a keyword
baseline and language-ID-only filtering (keep every Chinese sample), all in the same run.
Throughput: samples per CPU-second of this single-threaded process (= per core), medians of
``--repeats`` runs over the held-out texts, ours vs the peers, with ratios. Language ID: accuracy
on the zh-vs-en records (``lang`` field) of the shared instruction sets, and what the configured
mixed policy does with the records the sets label mixed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# A fair keyword baseline: domain terms a curator would grep for (finance, law, business, politics).
KEYWORDS = (
    "法律 法规 条例 法院 判决 诉讼 被告 原告 合同 违约 侵权 犯罪 刑法 民法 公司法 律师 仲裁 条款 第.条 司法 "
    "金融 银行 股票 证券 基金 债券 投资 利率 贷款 保险 财务 会计 税 资产 负债 收益 利润 市场 汇率 通货膨胀 "
    "企业 公司 股东 董事 经营 管理 营销 商业 贸易 国有 国资 "
    "政府 政策 国务院 政治 党 人大 行政 监管 改革 选举"
).split()


def keyword_classifier(min_hits: int = 2):
    import re

    pat = re.compile("|".join(KEYWORDS))

    def classify(texts: list[str]) -> list[bool]:
        return [len(pat.findall(t[:512])) >= min_hits for t in texts]

    return classify


def prf(gold: list[bool], pred: list[bool]) -> dict:
    from filters.domain.train import binary_metrics

    return binary_metrics(gold, pred)


def cpu_rate(fn, texts: list[str], repeats: int) -> dict:
    rates, walls = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn(texts)
        c1, w1 = time.process_time(), time.perf_counter()
        rates.append(len(texts) / max(c1 - c0, 1e-9))
        walls.append(len(texts) / max(w1 - w0, 1e-9))
    return {"samples_per_cpu_s_median": round(statistics.median(rates)), "samples_per_wall_s_median":
            round(statistics.median(walls)), "runs": len(rates)}


def lang_records(data: Path):
    from filters.readers import RecordError, normalise

    for name in ("alpaca_zh_carbonz0", "belle_eval_set", "belle_seed_tasks", "disc_fin_sft_samples", "firefly_dummy",
                 "llamafactory_demo_sft", "longwriter_prompts", "medical_sft_1k_ood", "sharegpt_zh_1k"):
        for line in (data / name / "data.jsonl").open(encoding="utf-8"):
            r = json.loads(line)
            if not r.get("lang"):
                continue
            if "instruction" in r and "messages" not in r:
                msgs = [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r.get("response") or ""}]
            elif name == "firefly_dummy":
                msgs = [{"role": "user" if "human" in m else "assistant", "content": m.get("human") or m.get("assistant") or ""}
                        for m in r["messages"]]
            else:
                try:
                    msgs = normalise(r).messages
                except RecordError:
                    msgs = [{"role": "user", "content": r.get("instruction", "")},
                            {"role": "assistant", "content": r.get("response") or ""}]
            yield name, r["lang"], msgs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--model", default=None, help="default: the shipped filters/models/domain_zh.ftz")
    ap.add_argument("--extra-model", action="append", default=[], help="also evaluate these models (e.g. research)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    data = Path(args.data)

    from filters.domain.features import featurise_many
    from filters.domain.model import DomainModel
    from filters.domain.trainset import build_heldout
    from filters.langid import LanguageIdentifier

    held = build_heldout(data)
    texts = [r["text"] for r in held]
    gold = [r["label"] == "in" for r in held]
    result: dict = {"heldout": {"n": len(held), "in": sum(gold), "out": len(gold) - sum(gold),
                                "by_source": dict(Counter(r["source"] for r in held))}}

    # ---- quality
    model = DomainModel(args.model)
    quality = {}
    preds = model.predict(texts)
    quality["ours"] = prf(gold, [p.is_in for p in preds])
    quality["ours"]["threshold"] = model.threshold
    per_source = defaultdict(lambda: [0, 0])
    for r, p in zip(held, preds):
        per_source[r["source"]][0] += p.is_in == (r["label"] == "in")
        per_source[r["source"]][1] += 1
    quality["ours_accuracy_by_source"] = {k: round(a / n, 4) for k, (a, n) in per_source.items()}
    for extra in args.extra_model:
        em = DomainModel(extra)
        quality[f"model:{Path(extra).name}"] = prf(gold, [p.is_in for p in em.predict(texts)])
    kw = keyword_classifier()
    quality["keyword_baseline"] = prf(gold, kw(texts))
    lid = LanguageIdentifier()
    lid_keep = [lid.identify([{"role": "user", "content": t}]).keep for t in texts]
    quality["langid_only"] = prf(gold, lid_keep)
    result["quality"] = quality

    # ---- throughput (single thread; CPU seconds of this process = per core)
    bench_texts = texts * max(1, 20000 // len(texts))
    tp = {}
    # what DomainFilter runs: featurise a batch + fastText top-2 + P(in) and decisions as arrays
    tp["ours_classify"] = cpu_rate(lambda ts: model.predict_arrays(model.lines(ts), ts), bench_texts, args.repeats)
    tp["ours_classify_as_objects"] = cpu_rate(lambda ts: model.predict(ts), bench_texts, args.repeats)
    lines = model.lines(bench_texts)
    tp["ours_featurise_only"] = cpu_rate(lambda ts: model.lines(ts), bench_texts, args.repeats)
    tp["ours_fasttext_only"] = cpu_rate(lambda ts: model.ft.f.multilinePredict(lines, 2, 0.0, "replace"),
                                        bench_texts, args.repeats)
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    small = bench_texts[:4000]
    tp["jieba_featurisation_only"] = cpu_rate(lambda ts: featurise_many(ts, "char+word", model.max_chars), small,
                                              max(1, args.repeats // 2))
    tp["keyword_baseline"] = cpu_rate(kw, bench_texts, args.repeats)
    lid_model = lid.model

    def lid_only(ts):
        lines = [" ".join(t[:512].split()) + "\n" for t in ts]
        return lid_model.f.multilinePredict(lines, 1, 0.0, "replace")

    tp["langid_only_lid176"] = cpu_rate(lid_only, bench_texts, args.repeats)
    ours = tp["ours_classify"]["samples_per_cpu_s_median"]
    tp["ratio_ours_vs_keyword"] = round(ours / tp["keyword_baseline"]["samples_per_cpu_s_median"], 2)
    tp["ratio_ours_vs_langid_only"] = round(ours / tp["langid_only_lid176"]["samples_per_cpu_s_median"], 2)
    tp["mean_chars_per_sample"] = round(statistics.mean(len(t) for t in texts))
    result["throughput"] = tp

    # ---- language ID on the shared instruction sets
    counts = Counter()
    lid_mixed = Counter()
    for name, lang, msgs in lang_records(data):
        res = lid.identify(msgs)
        if lang in ("zh", "en"):
            counts["zh_en_total"] += 1
            counts["zh_en_correct"] += res.keep == (lang == "zh")
        elif lang in ("zh-en-mixed", "en-zh-mixed"):
            lid_mixed[f"{lang}:total"] += 1
            lid_mixed[f"{lang}:kept"] += res.keep
            lid_mixed[f"{lang}:flagged_mixed"] += res.mixed
            # the policy invariant: a sample we flag mixed is kept iff the policy says so
            expect = res.zh_share is not None and res.zh_share >= 0.5
            lid_mixed["policy_violations"] += bool(res.mixed and res.keep != expect)
    result["language_id"] = {
        "zh_vs_en_accuracy": round(counts["zh_en_correct"] / max(1, counts["zh_en_total"]), 5),
        "zh_vs_en_records": counts["zh_en_total"], "mixed_policy": lid.mixed_policy, "mixed": dict(lid_mixed)}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
