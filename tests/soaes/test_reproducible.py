"""Two clones in different directories produce byte-identical shards for the demo's CPT and SFT
manifests: ids and metadata hold paths relative to the input root, never where the clone lives."""
import os
import shutil
from pathlib import Path

import pytest

from corpora_manifests.models import load_manifest
from soaes.pipeline import load_pipeline, run_pipeline
from tests.conftest import REPO


def _clone(dst: Path) -> Path:
    shutil.copytree(REPO, dst, ignore=shutil.ignore_patterns(".git", "__pycache__", "demo_out", "runs", "build",
                                                             ".venv", "*.egg-info"))
    return dst


def _run_demo_data_stages(clone: Path) -> dict[str, list[tuple[str, str]]]:
    prev = Path.cwd()
    os.chdir(clone)  # the demo configs name the fixtures relative to the repository root
    try:
        # the data stages of the demo; a smaller synth source keeps the test short
        p = load_pipeline(clone / "configs" / "demo" / "pipeline.yaml", ["synth.source.limit=30"], root=clone / "out")
        run_pipeline(p, until="sft_stage1")
    finally:
        os.chdir(prev)
    out = {}
    for rel in ("cpt", "sft_stage1", "synth/sft_stage2", "synth/eval"):
        m = load_manifest(clone / "out" / rel)
        out[rel] = [(s.path, s.sha256) for s in m.shards]
    return out


@pytest.mark.slow
def test_two_clones_give_byte_identical_demo_shards(tmp_path):
    a = _run_demo_data_stages(_clone(tmp_path / "first" / "soaes"))
    b = _run_demo_data_stages(_clone(tmp_path / "elsewhere" / "deeper" / "copy"))
    assert all(a[k] for k in a), "every manifest holds shards"
    assert a == b
    # the ids really are relative: no row names the clone's directory
    from corpora_manifests.shards import iter_rows

    rows = list(iter_rows(tmp_path / "first" / "soaes" / "out" / "cpt"))
    assert rows and not any(str(tmp_path) in (r["id"] + str(r["metadata"])) for r in rows)
    mode = (tmp_path / "first" / "soaes" / "out" / "cpt" / "manifest.json").stat().st_mode & 0o777
    assert mode == 0o644 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
