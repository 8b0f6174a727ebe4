"""The README's main job, `soaes demo`: configs/demo/pipeline.yaml through the pipeline, end to end
on the bundled sample, one report, a tiny model whose loss visibly falls, a rerun that does nothing."""
import json
import os
import subprocess
import sys

import pytest

from corpora_manifests.models import load_manifest
from corpora_manifests.shards import iter_rows, verify_manifest


# In-process training tests leave a launcher env (and a bound MASTER_PORT) in this process: the demo
# is a fresh single process and must not inherit it.
ENV = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR",
                                                         "MASTER_PORT", "LOCAL_WORLD_SIZE")}


@pytest.mark.slow
def test_demo_runs_every_stage_into_one_report(tmp_path):
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "soaes.cli", "demo", "--output", str(out)],
                         capture_output=True, text=True, timeout=1800, env=ENV)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    console = (run.stdout + run.stderr).splitlines()
    assert len(console) <= 60, "\n".join(console)
    stages = {}
    for rel in ("cpt", "sft_stage1", "synth/sft_stage2", "synth/eval"):
        m = load_manifest(out / rel)
        assert verify_manifest(out / rel, m) == []
        assert m.totals.records > 0 and m.totals.tokens > 0
        stages[m.stage] = m
    assert set(stages) == {"cpt", "sft_stage1", "sft_stage2", "eval"}
    # broken fixture files end in the CPT rejects, not in the corpus and not lost
    read_rejects = stages["cpt"].stats["rejects"]["read"]
    assert read_rejects["empty_file"] == 2 and read_rejects["pdf_unreadable"] == 1
    assert stages["cpt"].stats["dedup"]["removed_near"] > 0, "the fixture laws hold dated versions of one law"
    # demo approvals are labelled as such in the data, never passed off as a person's
    annotators = {a for r in iter_rows(out / "synth" / "sft_stage2") for a in r["metadata"]["review.annotators"]}
    assert annotators == {"demo-auto-approval"}
    # the tiny CPT model visibly learns
    cpt_stage = json.loads(next((out / "train_cpt" / "stages").glob("*/stage.json")).read_text())
    losses = [h["loss"] for h in cpt_stage["log_history"] if "loss" in h]
    assert losses[0] - min(losses[-3:]) > 2.0, losses
    assert (out / "train_sft" / "final").resolve().is_dir()
    # one report linking every stage's manifest / run record, with the demo label
    report = (out / "report.html").read_text(encoding="utf-8")
    for link in ("cpt/manifest.json", "sft_stage1/manifest.json", "synth/sft_stage2/manifest.json",
                 "synth/eval/manifest.json", "train_cpt/run.json", "train_sft/run.json", "cpt/report.html"):
        assert f"href='{link}'" in report, link
    assert "demo-auto-approval" in report and report.count("<img") >= 4
    assert (out / "report.html").stat().st_mode & 0o777 == 0o644
    # Table 2 of the demo's trained stages (eval stage): a row per stage of train_cpt and train_sft
    cmp = json.loads((out / "eval" / "compare" / "compare.json").read_text(encoding="utf-8"))
    assert len(cmp["rows"]) == 3 and all(r["n"] > 0 for r in cmp["rows"]), cmp["rows"]
    assert "Table 2" in report and "href='eval/compare/compare.md'" in report
    again = subprocess.run([sys.executable, "-m", "soaes.cli", "demo", "--output", str(out)],
                           capture_output=True, text=True, timeout=900, env=ENV)
    assert again.returncode == 0, again.stderr[-3000:]
    for name in ("cpt", "synth", "review", "sft_stage1", "train_cpt", "train_sft", "eval"):
        assert f"{name}: up to date" in again.stdout, again.stdout
