"""Leave-one-source-family-out evaluation of the domain classifier (needs ../shared/data).

    nice python benchmarks/domain_lofo.py [--data ../shared/data] [--families news_titles,exam]
                                          [--systems kw1,kw2,fasttext,ours] [--json out.json] [--md out.md]

For each family (news titles, exam questions, abstracts, app descriptions, instructions,
statutes/policy; ``filters/domain/families.py``) every trained system is fitted on the other
families' training records, its threshold set on their validation records, and scored on the
held-out family: binary in-domain P/R/F1 with 95 % bootstrap intervals, beside the keyword
baselines (≥ 1 / ≥ 2 hits) — see ``filters/domain/lofo.py``. One run; the table is printed as
Markdown for docs/filters.md and benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from filters.domain.families import FAMILIES, iter_family_records, iter_unlabelled, pseudo_negatives
    from filters.domain.lofo import markdown_table, run_lofo

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--systems", default="kw1,kw2,fasttext,ours")
    ap.add_argument("--workdir", default=str(REPO / "build" / "lofo"))
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1, help="fastText training threads (>1: not bit-reproducible)")
    ap.add_argument("--no-pseudo", action="store_true", help="leave out the pseudo-labelled pool negatives")
    ap.add_argument("--pseudo-positives", action="store_true",
                    help="also lexicon-prior pseudo-positives from the pools (families.pseudo_positives; a variant)")
    ap.add_argument("--licence", default="any", choices=("any", "permissive"),
                    help="train only on sources a shipped model may use (filters/domain/licences.py); "
                         "every family is still scored")
    ap.add_argument("--reuse", action="store_true", help="reuse models already in --workdir")
    ap.add_argument("--speed", default=None, metavar="MODEL[,MODEL…]",
                    help="only measure each MODEL's classify throughput (samples per CPU-second, median of --repeats, "
                         "the models' runs interleaved) on every family's texts, beside the keyword baseline")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--md", default=None)
    args = ap.parse_args()
    t0 = time.time()
    records = list(iter_family_records(args.data))
    if args.speed:
        import statistics

        from filters.domain.baselines import keyword_classifier
        from filters.domain.lexicon import lexicon_gate
        from filters.domain.model import DomainModel

        texts = [r["text"] for r in records]
        res = {"texts": len(texts), "mean_chars": round(sum(map(len, texts)) / len(texts)), "models": {},
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": __import__("os").getloadavg()}
        runs: dict = {}
        models = {path: DomainModel(path) for path in args.speed.split(",")}
        for path, m in models.items():  # load everything (fastText, mined lexicon) before timing
            m.predict(texts[:10])

        def cascade(m, ts):  # what DomainFilter does by default: the classifier, then stage 2 on what it keeps
            _, _, is_in = m.predict_arrays(m.lines(ts), ts)
            return [bool(k) and lexicon_gate(t) is None for t, k in zip(ts, is_in.tolist())]

        kw = keyword_classifier(1)
        for _ in range(args.repeats):  # interleaved, so every model sees the same machine load
            for path, m in models.items():
                for name, fn in (("classify", lambda ts, m=m: m.predict_arrays(m.lines(ts), ts)),
                                 ("cascade_classify", lambda ts, m=m: cascade(m, ts))):
                    c0 = time.process_time()
                    fn(texts)
                    runs.setdefault((path, name), []).append(len(texts) / max(time.process_time() - c0, 1e-9))
            c0 = time.process_time()
            kw(texts)
            runs.setdefault(("keyword_baseline", "classify"), []).append(len(texts) / max(time.process_time() - c0, 1e-9))
        first = next(iter(models))
        for (path, name), rates in runs.items():
            res["models"].setdefault(path, {})[name] = {"samples_per_cpu_s_median": round(statistics.median(rates)),
                                                        "runs": [round(r) for r in rates]}
            if path in models and path != first:  # pair by pair: the VM's speed drifts between rounds
                res["models"][path][name]["paired_ratio_to_first_median"] = round(statistics.median(
                    a / b for a, b in zip(rates, runs[(first, name)])), 3)
        print(json.dumps(res, indent=2))
        return
    if not args.no_pseudo:  # always training data, never a held-out family; only the "ours*" recipes use them
        pool = list(iter_unlabelled(args.data, licence=args.licence))
        records += pseudo_negatives(pool)
        if args.pseudo_positives:
            from filters.domain.families import pseudo_positives

            records += pseudo_positives(pool)
    systems = tuple(args.systems.split(","))
    res = run_lofo(records, Path(args.workdir), systems=systems, families=tuple(args.families.split(",")),
                   n_boot=args.boot, reuse=args.reuse, log=lambda s: print(s, flush=True),
                   licence=args.licence, threads=args.threads)
    res["machine"] = {"platform": platform.platform(), "python": platform.python_version(),
                      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": round(time.time() - t0)}
    md = markdown_table(res, systems)
    print(md)
    if args.json:
        rows = res.pop("stack_rows", None)
        text = json.dumps(res, ensure_ascii=False, indent=2)
        if rows:  # thousands of short rows: one per line, not one number per line
            body = ",\n".join(f'  "{base}": [\n' + ",\n".join("    " + json.dumps(r, ensure_ascii=False) for r in rs)
                               + "\n  ]" for base, rs in rows.items())
            text = text[:-2] + ',\n  "stack_rows": {\n' + body + "\n  }\n}"
        json.loads(text)  # still one valid JSON document
        Path(args.json).write_text(text, encoding="utf-8")
    if args.md:
        Path(args.md).write_text(md + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
