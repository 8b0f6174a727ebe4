"""The one executor schema: every data stage builds datatrove's executors from it; old keys still load."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from corpora_manifests.executor import ExecutorConfig, build_executor, format_status, run_status


def test_builds_datatrove_executors_for_each_kind(tmp_path):
    from datatrove.executor import LocalPipelineExecutor, RayPipelineExecutor, SlurmPipelineExecutor

    for kind, cls in (("local", LocalPipelineExecutor), ("slurm", SlurmPipelineExecutor),
                      ("ray", RayPipelineExecutor)):
        cfg = ExecutorConfig(kind=kind, workers=4, tasks=100)
        ex = build_executor(cfg, [], tmp_path / kind, name="stage")
        assert isinstance(ex, cls) and ex.world_size == 100


def test_slurm_script_runs_this_interpreter_with_this_pythonpath(tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("PYTHONPATH", "/some/checkout")
    cfg = ExecutorConfig(kind="slurm", workers=2, tasks=3, slurm={"mem_per_cpu_gb": 0.5})
    ex = build_executor(cfg, [], tmp_path / "logs", name="extract")
    args = ex.get_sbatch_args(3)
    script = ex.get_launch_file_contents(args, "ignored")
    assert f"{sys.executable} -m datatrove.tools.launch_pickled_pipeline" in script
    assert "export PYTHONPATH=/some/checkout" in script
    assert "#SBATCH --mem-per-cpu=512M" in script and "#SBATCH --array=0-2%2" in script
    assert "--partition" not in script and "--qos" not in script  # cluster defaults unless configured


def test_schema_shorthand_legacy_keys_and_errors():
    from curation.pipelines.extract import ExtractConfig
    from filters.config import FiltersConfig

    assert ExecutorConfig.model_validate("ray").kind == "ray"
    old = ExtractConfig.model_validate({"executor": "slurm", "workers": 3, "tasks": 9, "slurm": {"time": "1:00:00"}})
    assert (old.executor.kind, old.executor.workers, old.executor.n_tasks, old.executor.slurm.time) == \
        ("slurm", 3, 9, "1:00:00")
    f = FiltersConfig.model_validate({"inputs": [{"path": "x"}], "output": "o",
                                      "executor": {"kind": "ray", "workers": 2}})
    assert f.executor.n_tasks == 2 and type(f.executor) is ExecutorConfig
    with pytest.raises(ValidationError):
        ExecutorConfig(kind="sge")
    with pytest.raises(ValidationError):
        ExecutorConfig(workers=0)
    with pytest.raises(ValidationError):
        ExecutorConfig.model_validate({"slurm": {"partitoin": "cpu"}})  # typos fail loudly


def test_status_of_a_directory_without_submission(tmp_path):
    st = run_status(tmp_path)
    assert st["finished"] is False and st["stages"] == []
    assert "no Slurm submission" in format_status(st)
