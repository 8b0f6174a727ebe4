"""Extraction, cleaning and filtering benchmarks (ours vs peers, same run). Needs ../shared/data.

    .venv/bin/python benchmarks/extraction.py [--repeats 3] [--sections html,pdf,chain,thresholds]

- html:   character-level F1 against the gold article text of html_readability_zh (4 pages):
          our HTML path (encoding detection → trafilatura → zh normalise → boilerplate lines) vs
          trafilatura's plain defaults (``trafilatura.extract(page)``) vs datatrove's Trafilatura step.
- pdf:    pages/s and chars/s over pdf_samples (7 PDFs): our PDF path vs pdfplumber alone
          (``page.extract_text()`` on every page), medians of --repeats runs.
- chain:  laws.jsonl: chars/s on one core of our cleaning + filtering chain (normalise →
          boilerplate → zh quality filter, and + PII) vs datatrove's stock GopherRepetition +
          GopherQuality + C4Quality + FineWebQuality filters with language="zh", on the same sample
          (every 11th statute); drop rates and reasons of both; ours also over all 3,475 statutes.
- thresholds: percentiles of every quality score on statutes, State Council documents and
          instruction answers, and the drop counts of the default thresholds (docs/curation.md).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("SOAES_SHARED_DATA", REPO.parent / "shared" / "data"))


def char_f1(pred: str, gold: str) -> tuple[float, float, float]:
    p = Counter("".join(pred.split()))
    g = Counter("".join(gold.split()))
    overlap = sum((p & g).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    prec, rec = overlap / sum(p.values()), overlap / sum(g.values())
    return prec, rec, 2 * prec * rec / (prec + rec)


def _ours_html(data: bytes, path: str) -> str:
    from curation.normalize import ZhNormalizer
    from curation.quality.boilerplate import BoilerplateLineRemover
    from curation.readers.html import extract_html

    text = extract_html(data, path)[0].text
    return BoilerplateLineRemover().clean(ZhNormalizer().format(text))[0]


def bench_html(repeats: int) -> dict:
    import trafilatura
    from datatrove.data import Document
    from datatrove.pipeline.extractors import Trafilatura

    rows = []
    pages = [json.loads(line) for line in (DATA / "html_readability_zh" / "manifest.jsonl").open(encoding="utf-8")]
    dt = Trafilatura(timeout=30)
    for rec in pages:
        src = DATA / "html_readability_zh" / rec["dir"] / "source.html"
        data = src.read_bytes()
        gold = rec["expected_text"]
        ours = _ours_html(data, str(src))
        plain = trafilatura.extract(data) or ""
        doc = Document(text=data.decode("utf-8", errors="replace"), id=rec["id"])
        dtr = list(dt.run(iter([doc])))
        dtt = dtr[0].text if dtr else ""
        rows.append({"page": rec["dir"], "ours": char_f1(ours, gold), "trafilatura_default": char_f1(plain, gold),
                     "datatrove_trafilatura": char_f1(dtt, gold)})
    out = {"pages": rows}
    for k in ("ours", "trafilatura_default", "datatrove_trafilatura"):
        out[f"mean_f1_{k}"] = statistics.mean(r[k][2] for r in rows)
    return out


def bench_pdf(repeats: int) -> dict:
    import pdfplumber

    from curation.readers.base import ExtractError
    from curation.readers.pdf import extract_pdf

    files = sorted((DATA / "pdf_samples").glob("*.pdf"))
    res: dict = {"files": {}}
    t_ours, t_peer = [], []
    pages_total = 0
    chars_ours = chars_peer = 0
    for r in range(repeats):
        t = 0.0
        chars = 0
        for f in files:
            data = f.read_bytes()
            t0 = time.perf_counter()
            try:
                text = extract_pdf(data, str(f))[0].text
                status = "ok"
            except ExtractError as e:
                text, status = "", e.reason
            t += time.perf_counter() - t0
            chars += len(text)
            if r == 0:
                res["files"][f.name] = {"ours_status": status, "ours_chars": len(text)}
        t_ours.append(t)
        chars_ours = chars
        t = 0.0
        chars = 0
        pages = 0
        for f in files:
            t0 = time.perf_counter()
            with pdfplumber.open(f) as pdf:
                text = "\n".join((p.extract_text() or "") for p in pdf.pages)
                pages += len(pdf.pages)
            t += time.perf_counter() - t0
            chars += len(text)
            if r == 0:
                res["files"][f.name]["pdfplumber_chars"] = len(text)
        t_peer.append(t)
        chars_peer, pages_total = chars, pages
    mo, mp = statistics.median(t_ours), statistics.median(t_peer)
    res.update({"pages": pages_total, "ours_s": mo, "pdfplumber_s": mp,
                "ours_pages_per_s": pages_total / mo, "pdfplumber_pages_per_s": pages_total / mp,
                "ours_chars_per_s": chars_ours / mo, "pdfplumber_chars_per_s": chars_peer / mp,
                "speedup": mp / mo})
    return res


def _laws() -> list:
    return [json.loads(line) for line in (DATA / "lawrefbook_laws" / "laws.jsonl").open(encoding="utf-8")]


def _run_chain(steps, docs):
    from datatrove.data import Document

    data = (Document(text=d["text"], id=d["id"]) for d in docs)
    for s in steps:
        data = s.run(data)
    return list(data)


def _reasons(steps) -> Counter:
    c: Counter = Counter()
    for s in steps:
        for k, v in s.stats.stats.items():
            if k.startswith("dropped_"):
                c[f"{s.name.strip()}: {k[8:]}"] += int(v.total)
    return c


def bench_chain(repeats: int, sample: int = 300) -> dict:
    """Speed on the same sample for both (every 11th statute, ``sample`` docs); drop rates on all
    3,475 statutes for ours (one pass) and on the sample for the stock filters, whose Gopher
    repetition filter alone runs at ~0.1 M chars/s on Chinese (jieba word splitting)."""
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)

    from curation.normalize import ZhNormalizer
    from curation.pii import ZhPIIRedactor
    from curation.quality.boilerplate import BoilerplateLineRemover
    from curation.quality.filters import ZhQualityFilter

    laws = _laws()
    docs = laws[::11][:sample]
    n_chars = sum(len(d["text"]) for d in docs)

    def ours(pii: bool):
        s = [ZhNormalizer(), BoilerplateLineRemover(), ZhQualityFilter()]
        return s + [ZhPIIRedactor()] if pii else s

    def peer():
        return [GopherRepetitionFilter(language="zh"), GopherQualityFilter(language="zh"),
                C4QualityFilter(language="zh"), FineWebQualityFilter(language="zh")]

    times: dict[str, list[float]] = {"ours": [], "ours_with_pii": [], "datatrove_stock": []}
    kept: dict[str, int] = {}
    reasons: dict[str, Counter] = {}
    _run_chain(ours(False), docs[:20])  # warm-up: lazy imports, charset tables
    _run_chain(peer(), docs[:5])
    for _ in range(repeats):
        for name, mk in (("ours", lambda: ours(False)), ("ours_with_pii", lambda: ours(True)), ("datatrove_stock", peer)):
            steps = mk()
            t0 = time.perf_counter()
            out = _run_chain(steps, docs)
            times[name].append(time.perf_counter() - t0)
            kept[name] = len(out)
            reasons[name] = _reasons(steps)
    res = {"sample_docs": len(docs), "sample_chars": n_chars}
    for name, ts in times.items():
        m = statistics.median(ts)
        res[name] = {"median_s": m, "chars_per_s": n_chars / m, "sample_kept": kept[name],
                     "sample_drop_rate": 1 - kept[name] / len(docs),
                     "sample_drop_reasons": dict(reasons[name].most_common())}
    res["speedup_ours_vs_stock"] = res["datatrove_stock"]["median_s"] / res["ours"]["median_s"]
    steps = ours(True)
    t0 = time.perf_counter()
    out = _run_chain(steps, laws)
    full_s = time.perf_counter() - t0
    res["full_laws"] = {"docs": len(laws), "chars": sum(len(d["text"]) for d in laws), "kept": len(out),
                        "dropped": len(laws) - len(out), "drop_rate": 1 - len(out) / len(laws),
                        "drop_reasons": dict(_reasons(steps).most_common()), "seconds_with_pii": full_s}
    return res


def bench_thresholds(repeats: int) -> dict:
    import numpy as np

    from curation.normalize import ZhNormalizer
    from curation.quality.boilerplate import BoilerplateLineRemover
    from curation.quality.filters import QualityThresholds, check_scores
    from curation.quality.scores import score_text

    norm, bp = ZhNormalizer(), BoilerplateLineRemover()
    sets = {
        "laws": [d["text"] for d in _laws()],
        "govcn_text": [json.loads(x)["text"] for x in (DATA / "govcn_policy_html" / "data.jsonl").open(encoding="utf-8")],
        "disc_fin_answers": [json.loads(x)["response"] for f in sorted((DATA / "disc_fin_sft_samples").glob("*.jsonl"))
                             for x in f.open(encoding="utf-8")],
        "bad_text_fixture": [json.loads(x)["text"] for x in
                             (REPO / "tests" / "fixtures" / "curation" / "bad_text.jsonl").open(encoding="utf-8")],
    }
    t = QualityThresholds()
    out = {}
    for name, texts in sets.items():
        scores = [score_text(bp.clean(norm.format(x))[0]) for x in texts]
        pct = {}
        for k in scores[0]:
            v = np.array([s[k] for s in scores])
            pct[k] = {p: round(float(np.percentile(v, p)), 4) for p in (0, 0.5, 1, 50, 99, 99.5, 100)}
        drops = Counter(check_scores(s, t) or "kept" for s in scores)
        out[name] = {"n": len(texts), "drops": dict(drops.most_common()), "percentiles": pct}
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sections", default="html,pdf,chain,thresholds")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    if not DATA.exists():
        print(f"needs ../shared/data (not found at {DATA})")
        return 2
    import logging

    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    from loguru import logger

    logger.remove()
    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for sec in args.sections.split(","):
        t0 = time.perf_counter()
        results[sec] = {"html": bench_html, "pdf": bench_pdf, "chain": bench_chain, "thresholds": bench_thresholds}[sec](args.repeats)
        print(f"## {sec} ({time.perf_counter() - t0:.1f}s)")
        r = results[sec]
        if sec == "html":
            for row in r["pages"]:
                print(f"  {row['page']:8s} F1 ours={row['ours'][2]:.3f}  trafilatura_default={row['trafilatura_default'][2]:.3f}"
                      f"  datatrove_trafilatura={row['datatrove_trafilatura'][2]:.3f}   (P/R ours {row['ours'][0]:.3f}/{row['ours'][1]:.3f})")
            print(f"  mean F1: ours={r['mean_f1_ours']:.3f} trafilatura_default={r['mean_f1_trafilatura_default']:.3f} "
                  f"datatrove_trafilatura={r['mean_f1_datatrove_trafilatura']:.3f}")
        elif sec == "pdf":
            for name, f in r["files"].items():
                print(f"  {name:58s} ours={f['ours_status']:24s} chars ours={f['ours_chars']:6d} pdfplumber={f['pdfplumber_chars']:6d}")
            print(f"  {r['pages']} pages: ours {r['ours_pages_per_s']:.1f} pages/s {r['ours_chars_per_s']:.0f} chars/s | "
                  f"pdfplumber {r['pdfplumber_pages_per_s']:.1f} pages/s {r['pdfplumber_chars_per_s']:.0f} chars/s | "
                  f"speed-up x{r['speedup']:.2f} (median of {args.repeats})")
        elif sec == "chain":
            print(f"  sample: {r['sample_docs']} statutes, {r['sample_chars'] / 1e6:.2f} M chars, median of {args.repeats}")
            for name in ("ours", "ours_with_pii", "datatrove_stock"):
                x = r[name]
                print(f"  {name:16s} {x['chars_per_s'] / 1e6:.3f} M chars/s/core  median {x['median_s']:.1f}s  "
                      f"sample drop {100 * x['sample_drop_rate']:.1f} %  reasons {x['sample_drop_reasons']}")
            print(f"  speed-up ours vs datatrove stock filters: x{r['speedup_ours_vs_stock']:.1f}")
            f = r["full_laws"]
            print(f"  all laws.jsonl ({f['docs']} docs, {f['chars'] / 1e6:.1f} M chars), ours + PII: dropped {f['dropped']} "
                  f"({100 * f['drop_rate']:.2f} %) reasons {f['drop_reasons']}  in {f['seconds_with_pii']:.1f}s")
        else:
            for name, x in r.items():
                print(f"  {name:18s} n={x['n']:5d} drops={x['drops']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
