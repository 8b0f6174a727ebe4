"""The README's main job, `soaes demo`, end to end on the bundled sample (about a minute)."""
import subprocess
import sys

import pytest

from corpora_manifests.models import load_manifest
from corpora_manifests.shards import verify_manifest


@pytest.mark.slow
def test_demo_runs_every_stage_and_produces_verified_manifests(tmp_path):
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "soaes.cli", "demo", "--output", str(out)],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stages = {}
    for m_path in out.rglob("manifest.json"):
        if "train" in m_path.relative_to(out).parts[0]:
            continue
        m = load_manifest(m_path)
        assert verify_manifest(m_path.parent, m) == []
        assert m.totals.records > 0 and m.totals.tokens > 0
        stages[m.stage] = m
    assert set(stages) == {"cpt", "sft_stage1", "sft_stage2", "eval"}
    # Broken fixture files end in the CPT rejects, not in the corpus and not lost.
    read_rejects = stages["cpt"].stats["rejects"]["read"]
    assert read_rejects["empty_file"] == 2 and read_rejects["pdf_unreadable"] == 1
    assert stages["cpt"].stats["dedup"]["removed_near"] > 0, "the fixture laws hold dated versions of one law"
    assert (out / "train" / "run.json").exists()
    again = subprocess.run([sys.executable, "-m", "soaes.cli", "demo", "--output", str(out)],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
