"""The one `--set key=value` parser (soaes.options / corpora_manifests.config) on real config models."""
import subprocess
import sys
from pathlib import Path

import pytest

from corpora_manifests.errors import UserError
from soaes.options import apply_overrides, flag_overrides, load_cli_config, parse_override

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "configs" / "demo"


def test_values_follow_the_dotlist_grammar():
    assert parse_override("inputs=[a, 'b c']") == ("inputs", ["a", "b c"])
    assert parse_override("tokenizer=null") == ("tokenizer", None)
    assert parse_override("dedup.threshold=0.85") == ("dedup.threshold", 0.85)
    assert parse_override("lr=2e-6") == ("lr", 2e-6)
    assert parse_override("shard_bytes=1024") == ("shard_bytes", 1024)
    assert parse_override("name='007'") == ("name", "007")
    assert parse_override('name="a b=c"') == ("name", "a b=c")
    assert parse_override("url=http://127.0.0.1:8000/v1") == ("url", "http://127.0.0.1:8000/v1")
    assert parse_override("report={enabled: false}") == ("report", {"enabled": False})


@pytest.mark.parametrize("bad", ["no_equals", "=1", "a..b=1", "a=[1, 2"])
def test_malformed_overrides_are_user_errors(bad):
    with pytest.raises(UserError, match="override"):
        parse_override(bad)


def test_overrides_merge_into_the_yaml_and_validate():
    from curation.pipelines.run import CurateRunConfig

    cfg, _ = load_cli_config(DEMO / "curate_run.yaml", CurateRunConfig,
                             ["inputs=[x.jsonl, y.jsonl]", "tokenizer=null", "dedup.threshold=0.9", "name='007'"])
    assert cfg.inputs == ["x.jsonl", "y.jsonl"]
    assert cfg.tokenizer is None  # null is a value, not "not given"
    assert cfg.dedup.threshold == 0.9 and cfg.dedup.keep == "newest"  # nested key; siblings kept
    assert cfg.name == "007"


def test_list_index_and_mapping_merge():
    data = {"stages": [{"lr": 1}, {"lr": 2, "name": "b"}], "m": {"a": 1, "b": 2}}
    apply_overrides(data, ["stages.1.lr=3e-6", "m={b: 5, c: 6}"])
    assert data == {"stages": [{"lr": 1}, {"lr": 3e-6, "name": "b"}], "m": {"a": 1, "b": 5, "c": 6}}
    with pytest.raises(UserError, match="stages has no index 2"):
        apply_overrides(data, ["stages.2.lr=1"])
    with pytest.raises(UserError, match="is a list"):
        apply_overrides(data, ["stages.x=1"])


def test_unknown_and_invalid_keys_name_the_key():
    from curation.pipelines.run import CurateRunConfig

    with pytest.raises(UserError, match=r"'dedup\.thresold': unknown key"):
        load_cli_config(DEMO / "curate_run.yaml", CurateRunConfig, ["dedup.thresold=0.9"])
    with pytest.raises(UserError, match=r"'dedup\.threshold'"):
        load_cli_config(DEMO / "curate_run.yaml", CurateRunConfig, ["dedup.threshold=high"])


def test_flags_map_onto_each_config_schema():
    from curation.dedup.pipeline import DedupRunConfig
    from curation.pipelines.run import CurateRunConfig
    from filters.config import FiltersConfig
    from synthesis.config import SynthConfig
    from training.config import TrainConfig

    keys = lambda m, **kw: [k for k, _ in flag_overrides(m, **kw)]  # noqa: E731
    assert keys(CurateRunConfig, output="o", workers=2) == ["output", "executor.workers"]
    assert keys(DedupRunConfig, workers=2, executor="ray") == ["executor.workers", "executor.kind"]
    assert keys(FiltersConfig, output="o", workers=2, executor="local") == ["output", "executor.workers", "executor.kind"]
    assert keys(SynthConfig, output="o", workers=4) == ["output_dir", "llm.max_concurrency"]
    assert keys(TrainConfig, output="o") == ["output_dir"]
    assert keys(SynthConfig, executor="slurm") == ["chunking.executor.kind"]  # synth's executor runs chunking
    with pytest.raises(UserError, match="executor slurm does not apply"):
        flag_overrides(TrainConfig, executor="slurm")


def test_bad_set_on_the_command_line_exits_2_with_one_line(tmp_path):
    cfg = DEMO / "train_sft.yaml"
    for bad in (["--set", "lr_typo=1"], ["--set", "seq_len=[1"], ["--set", "stages.9.learning_rate=1"]):
        p = subprocess.run([sys.executable, "-m", "soaes.cli", "train", "sft", str(cfg), *bad, "--dry-run"],
                           capture_output=True, text=True, cwd=REPO)
        assert p.returncode == 2, (bad, p.stdout, p.stderr)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
