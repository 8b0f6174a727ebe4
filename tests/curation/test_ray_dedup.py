"""The dedup stages on datatrove's Ray executor against a local Ray instance (started here, 2 CPUs)
find the same clusters, keep the same documents and write the same shards as the local executor."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures" / "dedup"

# Fewer bands than the default and several ranks per Ray job keep the number of (short) Ray jobs
# small; both runs use the same dedup config.
CONFIG = {"count_tokens": False, "report": False,
          "dedup": {"num_bands": 4, "rows_per_band": 4, "threshold": 0.8}}


def _input(tmp_path: Path) -> Path:
    lines = [line for line in (FIX / "docs.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    inp = tmp_path / "in"
    inp.mkdir()
    for k in range(2):
        (inp / f"part{k}.jsonl").write_text("\n".join(lines[k::2]) + "\n", encoding="utf-8")
    return inp


def _result(out: Path):
    df = pl.read_parquet(out / "clusters.parquet").sort("id")
    shards = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "data").glob("*.parquet"))}
    return df.to_dicts(), shards


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=80 * 1024 * 1024)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_executor_finds_the_same_clusters_as_local(tmp_path, local_ray):
    from curation.dedup.pipeline import run_dedup

    inp = _input(tmp_path)
    local = run_dedup({**CONFIG, "input": [str(inp)], "output": str(tmp_path / "local"),
                       "executor": {"kind": "local", "tasks": 2, "workers": 1}})
    on_ray = run_dedup({**CONFIG, "input": [str(inp)], "output": str(tmp_path / "ray"),
                        "executor": {"kind": "ray", "tasks": 2, "workers": 2,
                                     "ray": {"tasks_per_job": 5, "mem_per_cpu_gb": 0.25}}})
    assert (on_ray / "dedup_work" / "logs" / "signature" / "executor.json").exists()
    assert json.loads((on_ray / "dedup_work" / "logs" / "buckets" / "executor.json").read_text())
    local_clusters, local_shards = _result(local)
    ray_clusters, ray_shards = _result(on_ray)
    assert local_clusters and ray_clusters == local_clusters
    assert {frozenset(r["id"] for r in local_clusters if r["cluster_id"] == c)
            for c in {r["cluster_id"] for r in local_clusters}} == {
        frozenset({"b00", "b00-exact"}), frozenset({"b01", "b01-near-1", "b01-near-2"}), frozenset({"s1", "s2"})}
    assert ray_shards == local_shards
