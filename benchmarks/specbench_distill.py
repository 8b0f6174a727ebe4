"""Speculative decoding with the distillation issue's toy models: the teacher as target, the SFT-only
student and the KD student as drafts, side by side (the paper's Tables 4-6 on a CPU toy).

    nice .venv/bin/python benchmarks/specbench_distill.py --toy /work/toy_distill \
        [--data tests/fixtures/training/sft_stage2 --split validation] [--n 3,5] [--max-new-tokens 64] [--limit 5]

--toy is scripts/distill_toy.py's --out (teacher/, student_sft/, student_kd/). Each draft runs
`soaes eval specbench` (target alone, draft-model assisted, prompt lookup; greedy and top-p 0.7;
self-draft check) in this process; prints one table per draft and a JSON line with the acceptance
rates. Acceptance is a property of the models (greedy: deterministic); tokens/s on a shared CPU
are not comparable across runs and a draft as large as a toy target cannot speed it up.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--toy", default="/work/toy_distill")
    ap.add_argument("--data", default=str(REPO / "tests/fixtures/training/sft_stage2"))
    ap.add_argument("--split", default="validation")
    ap.add_argument("--n", default="3,5")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--out", default="/tmp/specbench_distill")
    ap.add_argument("--drafts", default="student_sft,student_kd", help="model dirs under --toy used as drafts")
    a = ap.parse_args()

    from training.specbench import SpecbenchSettings, specbench, to_markdown

    toy = Path(a.toy)
    settings = SpecbenchSettings(ns=tuple(int(x) for x in a.n.split(",")), max_new_tokens=a.max_new_tokens,
                                 limit=a.limit)
    summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(),
               "target": str(toy / "teacher"), "settings": vars(a), "drafts": {}}
    for name in a.drafts.split(","):
        if not (toy / name / "config.json").exists():
            print(f"## draft = {name}: not found under {toy} (not built yet)\n")
            summary["drafts"][name] = None
            continue
        res = specbench(toy / "teacher", toy / name, Path(a.data), settings, split=a.split)
        out = Path(a.out) / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "specbench.json").write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"## draft = {name}\n\n{to_markdown(res)}")
        summary["drafts"][name] = {
            "trustworthy": res["trustworthy"],
            "acceptance": {f"{r['mode']} n={r['n']}": r["acceptance_rate"] for r in res["rows"] if r["method"] == "draft"},
            "mean_accepted_length": {f"{r['mode']} n={r['n']}": r["mean_accepted_length"] for r in res["rows"]
                                     if r["method"] == "draft"},
            "prompt_lookup_acceptance": {f"{r['mode']} n={r['n']}": r["acceptance_rate"] for r in res["rows"]
                                         if r["method"] == "prompt-lookup"},
        }
    print(json.dumps(summary, ensure_ascii=False))
    return 0 if all(d and d["trustworthy"] for d in summary["drafts"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
