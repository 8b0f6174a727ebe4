"""Token counting: tiktoken on the Qwen2.5 ranks (ours, ``corpora_manifests.fast_tokens``) vs the
transformers fast tokenizer (the peer), same documents, same process.

    nice .venv/bin/python benchmarks/tokens.py [--data ../shared/data/lawrefbook_laws/laws.jsonl]
                                               [--docs 0] [--repeats 3]

Reports characters per CPU-second (``time.process_time``: all threads of the process, so a
multi-threaded encoder is not flattered) for each encoder, median of --repeats, and checks that the
ids are identical on every benchmark document. The fast path must reach 2.5 M chars per CPU-second.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lawrefbook_laws" / "laws.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--docs", type=int, default=0, help="first N documents (0: all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the report here")
    a = ap.parse_args()
    if not a.data.exists():
        sys.exit(f"benchmark data not found: {a.data} (needs ../shared/data)")

    from corpora_manifests.fast_tokens import encode_arrays, qwen25_tiktoken
    from corpora_manifests.tokenizer import load_tokenizer

    texts = []
    with open(a.data, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
            if a.docs and len(texts) >= a.docs:
                break
    chars = sum(map(len, texts))
    tok = load_tokenizer("qwen2.5")
    qwen25_tiktoken()  # load the ranks outside the timing (once per process, ~1 s)

    def hf(batch):
        return [e.ids for e in tok.backend_tokenizer.encode_batch(batch, add_special_tokens=False)]

    def ours(threads):
        # what the pipelines' counting step and the CPT token cache call (arrays; ids compared below)
        return lambda b: encode_arrays(tok, b, threads=threads)

    runs = {"ours_tiktoken": [], "ours_tiktoken_2threads": [], "transformers": []}
    ids = {}
    for _ in range(a.repeats):
        for name, fn in (("ours_tiktoken", ours(1)), ("ours_tiktoken_2threads", ours(2)),
                         ("transformers", hf)):
            out = []
            c0, w0 = time.process_time(), time.perf_counter()
            for i in range(0, len(texts), 512):  # the batch size of the pipelines' counting step
                out.extend(fn(texts[i:i + 512]))
            runs[name].append({"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0})
            ids[name] = out
    mismatched = sum(1 for x, y in zip(ids["ours_tiktoken"], ids["transformers"]) if x.tolist() != y)
    mismatched += sum(1 for x, y in zip(ids["ours_tiktoken_2threads"], ids["transformers"]) if x.tolist() != y)
    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "data": str(a.data), "documents": len(texts), "chars": chars,
        "tokens": sum(map(len, ids["transformers"])),
        "documents_with_different_ids": mismatched,
    }
    for name, rs in runs.items():
        cpu = statistics.median(r["cpu_s"] for r in rs)
        wall = statistics.median(r["wall_s"] for r in rs)
        report[name] = {"cpu_s": cpu, "wall_s": wall, "chars_per_cpu_s": chars / cpu, "chars_per_wall_s": chars / wall}
        print(f"{name:24s} {chars / cpu / 1e6:6.2f} M chars/CPU-s  {chars / wall / 1e6:6.2f} M chars/s wall "
              f"(median of {a.repeats})")
    ratio = report["ours_tiktoken"]["chars_per_cpu_s"] / report["transformers"]["chars_per_cpu_s"]
    report["speedup_per_cpu_s"] = ratio
    print(f"{len(texts)} documents, {chars / 1e6:.1f} M chars, {report['tokens'] / 1e6:.2f} M tokens; "
          f"documents with different ids: {mismatched}; tiktoken / transformers per CPU-second: {ratio:.1f}x")
    if a.json:
        a.json.write_text(json.dumps(report, indent=2))
    if mismatched:
        sys.exit(1)


if __name__ == "__main__":
    main()
