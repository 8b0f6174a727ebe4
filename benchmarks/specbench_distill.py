"""Speculative decoding with the distillation toy's models: the teacher as target, the SFT-only
student and the KD student as drafts, side by side (the paper's Tables 4-6 on a CPU toy).

    nice .venv/bin/python benchmarks/specbench_distill.py --root demo_out/toy_distill \
        [--data tests/fixtures/training/sft_stage2 --split validation] [--n 3,5] [--max-new-tokens 64] [--limit 5]

--root is the run root of `soaes pipeline run configs/demo/distill_toy.yaml` (or scripts/distill_toy.py's
--out): every model is `<root>/<stage>/final` (stages teacher, student_sft, student_kd; --target and
--drafts name others, e.g. train_sft and train_draft of configs/soaesv2.yaml). Each draft runs
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


def model_dir(root: Path, stage: str) -> Path | None:
    """A stage's final weights: ``<root>/<stage>/final`` (pipeline layout) or, for runs made before
    the toy went through the pipeline, ``<root>/<stage>`` itself; None when neither holds a model."""
    for d in (root / stage / "final", root / stage):
        if (d / "config.json").is_file():
            return d
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--root", "--toy", dest="root", default="demo_out/toy_distill",
                    help="pipeline run root: models are <root>/<stage>/final (default: %(default)s)")
    ap.add_argument("--target", default="teacher", help="stage whose final model is the target (default: %(default)s)")
    ap.add_argument("--data", default=str(REPO / "tests/fixtures/training/sft_stage2"),
                    help="manifest whose prompts are answered (default: the fixture SFT stage-2 manifest)")
    ap.add_argument("--split", default="validation", help="its split (default: %(default)s)")
    ap.add_argument("--n", default="3,5", help="draft lengths, comma-separated (default: %(default)s)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--limit", type=int, default=5, help="prompts (default: %(default)s)")
    ap.add_argument("--out", default="/tmp/specbench_distill", help="<out>/<draft>/specbench.json (default: %(default)s)")
    ap.add_argument("--drafts", default="student_sft,student_kd",
                    help="comma-separated stages whose final models are the drafts (default: %(default)s)")
    a = ap.parse_args()

    root = Path(a.root)
    target = model_dir(root, a.target)
    if target is None:
        print(f"error: no target model at {root / a.target / 'final'} (run the pipeline first)", file=sys.stderr)
        return 2

    from training.specbench import SpecbenchSettings, specbench, to_markdown

    settings = SpecbenchSettings(ns=tuple(int(x) for x in a.n.split(",")), max_new_tokens=a.max_new_tokens,
                                 limit=a.limit)
    summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(),
               "target": str(target), "settings": vars(a), "drafts": {}}
    for name in a.drafts.split(","):
        draft = model_dir(root, name)
        if draft is None:
            print(f"## draft = {name}: no model at {root / name / 'final'} (not built yet)\n")
            summary["drafts"][name] = None
            continue
        res = specbench(target, draft, Path(a.data), settings, split=a.split)
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
