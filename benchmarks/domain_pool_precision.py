"""Precision of the domain filter on a topic-diverse instruction pool (Alpaca-zh + ShareGPT).

    python benchmarks/domain_pool_precision.py sample [--data ../shared/data] [--model M] [--n 200]
    python benchmarks/domain_pool_precision.py score

``sample``: the pool (``alpaca_zh_carbonz0`` + ``sharegpt_zh_1k``, 21,465 records; needs
../shared/data) goes through the stage-1 language filter (``LanguageIdentifier``, default policy)
and the domain classifier exactly as ``DomainFilter`` reads a sample (``filters.text.domain_text``);
``--n`` kept and ``--n`` dropped Chinese records are drawn at random (seed 12) and written to
``benchmarks/domain_pool/sample.jsonl`` with the model's output. Labels are then written by hand
into ``benchmarks/domain_pool/labels.jsonl`` (the texts stay in the git-ignored ``sample.jsonl``;
``sample_ids.jsonl`` is committed) ({id, label: in|out, note}) following
``benchmarks/domain_pool/RULE.md`` (written before labelling).
``--lexicon-min-hits`` (default 1, as ``DomainFilter``) applies cascade stage 2
(``filters/domain/lexicon.py``); ``--out DIR`` chooses the sample directory; ``--exclude-labelled
LABELS.jsonl`` keeps records labelled before (validation) out of a new sample; ``--note-labelled
LABELS.jsonl`` instead draws uniformly from the whole set and only marks them (``labelled_before``;
``score`` then also splits the figures by it).
``census`` (``census --threshold T LABELS.jsonl …``): how many of the records kept now carry a hand
label in any of the given label files, and their precision (a near-census when earlier samples
cover most of the kept set; labels used to choose the threshold flatter it), and the lower bound
``precision_if_unlabelled_out`` that the stage-1 threshold is chosen by (docs/filters.md).
``reweight DIR…``: the stage-1 threshold rule — the smallest threshold at which the mean re-weighted
precision (classifier + stage 2) over earlier labelled samples reaches ``--target`` (validation only).
``score``: precision of the kept set and the in-domain share of the dropped set, with 95 % Wilson
intervals, and the implied recall on the pool.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "domain_pool"


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(c - h, 4), round(c + h, 4)]


def pool(data: Path):
    from filters.readers import Malformed, read_samples

    for name in ("alpaca_zh_carbonz0", "sharegpt_zh_1k"):
        for s in read_samples(data / name / "data.jsonl", "auto", name):
            if not isinstance(s, Malformed):
                yield name, s


def decide(args):
    """The pool's Chinese records, the model's predictions and DomainFilter's keep decision."""
    from filters.domain.model import DomainModel
    from filters.langid import LanguageIdentifier
    from filters.text import domain_text

    from filters.domain.lexicon import lexicon_gate, request_text

    model = DomainModel(args.model, args.threshold)
    cache = Path(args.lang_cache) if args.lang_cache else None
    zh = set(json.loads(cache.read_text())) if cache and cache.exists() else None
    lid = LanguageIdentifier() if zh is None else None
    recs = []
    counts = Counter()
    for name, s in pool(Path(args.data)):
        counts["read"] += 1
        keep = (f"{name}/{s.id}" in zh) if zh is not None else lid.identify(s.messages).keep
        if not keep:
            counts["not_chinese"] += 1
            continue
        recs.append((name, s, domain_text(s.messages)))
    if cache and zh is None:  # language ID does not depend on the domain model: computed once
        cache.write_text(json.dumps(sorted(f"{n}/{s.id}" for n, s, _ in recs)))
    preds = model.predict([t for _, _, t in recs])
    # exactly DomainFilter's decision: the classifier, then (if on) the lexicon stage on the request
    keep = [p.is_in and (args.lexicon_min_hits == 0 or lexicon_gate(request_text(s.messages), args.lexicon_min_hits) is None)
            for (_, s, _), p in zip(recs, preds)]
    return model, recs, preds, keep, counts


def census(args) -> None:
    """Every kept record that carries a hand label in any of the LABELS files (first label wins):
    with enough earlier samples the kept set is (nearly) fully labelled, and its precision needs no
    sampling — but labels used to choose the threshold flatter it; the fresh sample is the unbiased part."""
    _, recs, preds, keep, counts = decide(args)
    kept = {s.id for (_, s, _), k in zip(recs, keep) if k}
    lab: dict[str, tuple[str, str]] = {}
    for f in args.labels:
        for line in Path(f).open(encoding="utf-8"):
            r = json.loads(line)
            lab.setdefault(r["id"], (r["label"], Path(f).parent.name))
    by: dict[str, list[int]] = {}
    for i in kept:
        if i in lab:
            c = by.setdefault(lab[i][1], [0, 0])
            c[0] += lab[i][0] == "in"
            c[1] += 1
    k_in, k_n = sum(c[0] for c in by.values()), sum(c[1] for c in by.values())
    # the stage-1 threshold rule since 2026-12-01 (session 4): the smallest t whose kept set is ≥ 0.85
    # in-domain even if every kept record without a label is out (a bound, not an estimate)
    print(json.dumps({"kept": len(kept), "labelled": k_n, "in": k_in, "precision_of_labelled": round(k_in / max(1, k_n), 4),
                      "ci95": wilson(k_in, k_n), "precision_if_unlabelled_out": round(k_in / max(1, len(kept)), 4),
                      "by_sample": {d: {"n": n, "in": i} for d, (i, n) in sorted(by.items())},
                      "threshold": args.threshold}, indent=2))


def reweight(args) -> None:
    """The stage-1 threshold rule (docs/filters.md): for each earlier labelled sample directory, the
    precision of classifier + stage 2 at threshold t over its labelled records, each weighing its
    stratum's size / records drawn from it (the strata are the kept / dropped sets of the model that
    drew the sample, less the records excluded as labelled before); the chosen threshold is the
    smallest t whose mean over the samples is ≥ ``--target``. Labels used here are validation: a
    fresh sample must be drawn afterwards to measure."""
    args.threshold = 0.0  # every record passes the classifier, so decide's keep is stage 2's verdict alone
    _, recs, preds, gate, _ = decide(args)
    by_id = {s.id: (p.p_in, g) for (_, s, _), p, g in zip(recs, preds, gate)}
    samples = []
    for d in map(Path, args.dirs):
        info = json.loads((d / "sample_info.json").read_text(encoding="utf-8"))["counts"]
        ids = {r["id"]: r["set"] for r in map(json.loads, (d / "sample_ids.jsonl").open(encoding="utf-8"))}
        labels = {r["id"]: r["label"] for r in map(json.loads, (d / "labels.jsonl").open(encoding="utf-8"))}
        drawn = Counter(ids.values())
        w = {k: (info[k] - info.get(f"excluded_labelled_{k}", 0)) / max(1, drawn[k]) for k in ("kept", "dropped")}
        samples.append((d.name, [(by_id[i], w[st], labels[i] == "in") for i, st in ids.items() if i in by_id and i in labels]))
    grid = [round(x, 2) for x in args.grid]
    rows = {}
    for t in grid:
        per = {}
        for name, items in samples:
            kin = sum(wt for (p, gate), wt, g in items if p >= t and gate and g)
            kall = sum(wt for (p, gate), wt, g in items if p >= t and gate)
            per[name] = round(kin / kall, 4) if kall else None
        vals = [v for v in per.values() if v is not None]
        kept = sum(1 for p, gate in by_id.values() if p >= t and gate)
        rows[str(t)] = {"mean": round(sum(vals) / max(1, len(vals)), 4), "by_sample": per, "kept": kept}
    chosen = next((t for t in grid if rows[str(t)]["mean"] >= args.target), None)
    print(json.dumps({"target": args.target, "chosen": chosen, "grid": rows}, indent=2))


def sample(args) -> None:
    out_dir = Path(args.out)
    # records labelled earlier (validation: the cascade's rule was chosen on them) are never re-drawn
    exclude = set()
    for f in args.exclude_labelled or []:
        exclude |= {json.loads(l)["id"] for l in Path(f).open(encoding="utf-8")}
    model, recs, preds, keep, counts = decide(args)
    kept = [(r, p) for r, p, k in zip(recs, preds, keep) if k]
    dropped = [(r, p) for r, p, k in zip(recs, preds, keep) if not k]
    counts.update(chinese=len(recs), kept=len(kept), dropped=len(dropped), classifier_kept=sum(p.is_in for p in preds))
    before = set()  # --note-labelled: drawn like any record, but marked (labels are not copied)
    for f in args.note_labelled or []:
        before |= {json.loads(l)["id"] for l in Path(f).open(encoding="utf-8")}
    kept_s = [(r, p) for r, p in kept if r[1].id not in exclude]
    dropped_s = [(r, p) for r, p in dropped if r[1].id not in exclude]
    counts.update(excluded_labelled_kept=len(kept) - len(kept_s), excluded_labelled_dropped=len(dropped) - len(dropped_s))
    rng = random.Random(12)
    rows = []
    for which, items in (("kept", kept_s), ("dropped", dropped_s)):
        for (name, s, text), p in rng.sample(items, min(args.n, len(items))):
            user = next((m["content"] for m in s.messages if m["role"] == "user"), "")
            ans = next((m["content"] for m in s.messages if m["role"] == "assistant"), "")
            rows.append({"id": s.id, "source": name, "set": which, "p_in": round(p.p_in, 4), "domain": p.domain,
                         "question": user[:400], "answer": ans[:200]})
            if args.note_labelled:
                rows[-1]["labelled_before"] = s.id in before
    out_dir.mkdir(parents=True, exist_ok=True)
    # sample.jsonl holds the texts (for labelling; git-ignored: Alpaca-zh may not be committed);
    # sample_ids.jsonl, committed, holds what scoring needs
    with (out_dir / "sample.jsonl").open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with (out_dir / "sample_ids.jsonl").open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: r[k] for k in ("id", "source", "set", "p_in", "domain", "labelled_before") if k in r},
                               ensure_ascii=False) + "\n")
    info = {"model": str(model.path), "model_sha256": model.info.get("model_sha256"), "threshold": model.threshold,
            "counts": dict(counts), "seed": 12, "n_per_set": args.n, "lexicon_min_hits": args.lexicon_min_hits,
            "excluded_labelled": args.exclude_labelled or [], "noted_labelled": args.note_labelled or [],
            "kept_labelled_before": sum(r[1].id in before for r, _ in kept)}
    (out_dir / "sample_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(info, ensure_ascii=False, indent=2))


def score(args) -> None:
    OUT = Path(args.out)
    rows = {r["id"]: r for r in map(json.loads, (OUT / "sample_ids.jsonl").open(encoding="utf-8"))}
    labels = {r["id"]: r["label"] for r in map(json.loads, (OUT / "labels.jsonl").open(encoding="utf-8"))}
    missing = [i for i in rows if i not in labels]
    if missing:
        raise SystemExit(f"{len(missing)} sampled records have no label, e.g. {missing[:3]}")
    info = json.loads((OUT / "sample_info.json").read_text(encoding="utf-8"))
    res = {}
    for which in ("kept", "dropped"):
        ids = [i for i, r in rows.items() if r["set"] == which]
        k = sum(labels[i] == "in" for i in ids)
        res[which] = {"n": len(ids), "in": k, "share_in": round(k / max(1, len(ids)), 4), "ci95": wilson(k, len(ids))}
        if any("labelled_before" in rows[i] for i in ids):  # drawn at random from the whole set; split for the record
            for flag in (True, False):
                sub = [i for i in ids if rows[i].get("labelled_before") is flag]
                k2 = sum(labels[i] == "in" for i in sub)
                res[which]["labelled_before" if flag else "never_labelled"] = {
                    "n": len(sub), "in": k2, "share_in": round(k2 / max(1, len(sub)), 4), "ci95": wilson(k2, len(sub))}
    c = info["counts"]
    est_in_kept = res["kept"]["share_in"] * c["kept"]
    est_in_dropped = res["dropped"]["share_in"] * c["dropped"]
    res["precision_kept"] = res["kept"]["share_in"]
    res["estimated_recall_on_pool"] = round(est_in_kept / max(1e-9, est_in_kept + est_in_dropped), 4)
    res["pool"] = c
    # kept records are a random sample of everything at P(in) >= the run's threshold, so those at
    # P(in) >= t are a random sample of what a stricter threshold t would keep
    curve = {}
    for t in (info["threshold"], 0.3, 0.5, 0.7, 0.8, 0.9, 0.95):
        ids = [i for i, r in rows.items() if r["set"] == "kept" and r["p_in"] >= t]
        k = sum(labels[i] == "in" for i in ids)
        curve[str(t)] = {"n_sampled": len(ids), "precision": round(k / max(1, len(ids)), 4), "ci95": wilson(k, len(ids)),
                         "share_of_kept": round(len(ids) / max(1, res["kept"]["n"]), 4)}
    res["precision_if_threshold_raised"] = curve
    res["model_sha256"] = info.get("model_sha256")
    print(json.dumps(res, ensure_ascii=False, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    s.add_argument("--model", default=None)
    s.add_argument("--n", type=int, default=200)
    s.add_argument("--threshold", type=float, default=None, help="override the model's threshold")
    s.add_argument("--lang-cache", default=None, help="JSON list of the Chinese records' ids (written if missing)")
    s.add_argument("--lexicon-min-hits", type=int, default=1, help="cascade stage 2 as in DomainFilter (0 = classifier only)")
    s.add_argument("--exclude-labelled", action="append", help="labels.jsonl whose ids are never drawn (validation)")
    s.add_argument("--note-labelled", action="append",
                   help="labels.jsonl whose ids may be drawn but are marked labelled_before (a uniform sample of the set)")
    s.add_argument("--out", default=str(OUT), help="sample directory")
    sc = sub.add_parser("score")
    sc.add_argument("--out", default=str(OUT), help="sample directory")
    ce = sub.add_parser("census", help="precision of the kept records that carry a hand label in any LABELS file")
    for a in ("--data", "--model", "--threshold", "--lang-cache", "--lexicon-min-hits"):
        ce._add_action(next(x for x in s._actions if a in x.option_strings))
    ce.add_argument("labels", nargs="+", help="labels.jsonl files (earlier ones first)")
    rw = sub.add_parser("reweight", help="the stage-1 threshold rule on earlier labelled sample directories")
    for a in ("--data", "--model", "--lang-cache", "--lexicon-min-hits"):
        rw._add_action(next(x for x in s._actions if a in x.option_strings))
    rw.add_argument("--target", type=float, default=0.90)
    rw.add_argument("--grid", type=float, nargs="+", default=[k / 100 for k in range(50, 100)])
    rw.add_argument("dirs", nargs="+", help="sample directories (sample_info.json, sample_ids.jsonl, labels.jsonl)")
    args = ap.parse_args()
    {"sample": sample, "score": score, "census": census, "reweight": reweight}[args.cmd](args)


if __name__ == "__main__":
    main()
