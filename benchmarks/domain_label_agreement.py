"""Agreement of the LLM labelling prompt (``soaes filters label``) with the human labels of the shared sets.

    OPENAI_API_KEY=… python benchmarks/domain_label_agreement.py CONFIG.yaml [--n 300] [--data ../shared/data]
    python benchmarks/domain_label_agreement.py --testserver      # harness check against the local fake server

A stratified sample of the labelled family records (``filters/domain/families.py``: equal numbers
per family × in/out) is written as an instruction pool, labelled through ``filters.label.label_pool``
with the config's endpoint and prompt version, and compared with the sets' own labels: binary
in/out agreement, Cohen's kappa, and per-family agreement. Needs ../shared/data and, for a real
figure, a real endpoint; ``--testserver`` only proves the harness runs (the fake server labels by
a keyword rule, so its agreement says nothing about an LLM).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def kappa(a: list[bool], b: list[bool]) -> float:
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    return round((po - pe) / (1 - pe), 4) if pe < 1 else 1.0


def main() -> None:
    import yaml

    from filters.domain.families import iter_family_records
    from filters.domain.lofo import IN_LABELS
    from filters.label import LabelConfig, label_pool

    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--testserver", action="store_true")
    args = ap.parse_args()
    recs = list(iter_family_records(args.data))
    strata: dict[tuple, list[dict]] = defaultdict(list)
    for r in recs:
        strata[(r["family"], r["label"] in IN_LABELS)].append(r)
    per = max(1, args.n // len(strata))
    sample = [r for k in sorted(strata) for r in
              sorted(strata[k], key=lambda r: hashlib.md5(r["id"].encode()).hexdigest())[:per]]
    gold = {r["id"]: r for r in sample}
    work = Path(tempfile.mkdtemp(prefix="label_agreement_"))
    pool = work / "pool.jsonl"
    with pool.open("w", encoding="utf-8") as f:
        for r in sample:
            f.write(json.dumps({"id": r["id"], "instruction": r["text"], "output": "-"}, ensure_ascii=False) + "\n")
    server = None
    if args.testserver:
        import os

        from synthesis.testserver import FakeChatServer

        server = FakeChatServer().start()
        os.environ.setdefault("SOAES_AGREEMENT_KEY", "sk-local")
        cfg = LabelConfig(output=str(work / "out"), sample=len(sample),
                          llm={"base_url": server.base_url, "api_key_env": "SOAES_AGREEMENT_KEY", "temperature": 0})
    else:
        if not args.config:
            raise SystemExit("give CONFIG.yaml (llm endpoint, prompt_version) or --testserver")
        data = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
        data.update(output=str(work / "out"), sample=len(sample))
        cfg = LabelConfig.model_validate(data)
    try:
        summary = label_pool([pool], cfg)
    finally:
        if server:
            server.stop()
    got = {json.loads(l)["id"]: json.loads(l) for l in (work / "out" / "labels.jsonl").open(encoding="utf-8")}
    ids = [i for i in gold if i in got]
    g = [gold[i]["label"] in IN_LABELS for i in ids]
    p = [got[i]["label"] != "other" for i in ids]
    by = defaultdict(lambda: [0, 0])
    for i, x, y in zip(ids, g, p):
        by[gold[i]["family"]][0] += x == y
        by[gold[i]["family"]][1] += 1
    out = {"prompt_version": cfg.prompt_version, "llm_model": cfg.llm.model, "endpoint": "testserver" if server else cfg.llm.base_url,
           "sampled": len(sample), "labelled": len(ids), "rejected": len(sample) - len(ids),
           "binary_agreement": round(sum(x == y for x, y in zip(g, p)) / max(1, len(ids)), 4),
           "cohen_kappa": kappa(g, p) if ids else None,
           "by_family": {k: round(a / n, 4) for k, (a, n) in sorted(by.items())},
           "llm_label_distribution": dict(Counter(got[i]["label"] for i in ids)), "usage": summary.get("usage")}
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
