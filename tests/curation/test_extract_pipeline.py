"""End to end on the committed fixtures: every input file ends in the shards or in rejects."""
import subprocess
import sys

import pytest

from corpora_manifests.errors import UserError
from corpora_manifests.models import load_manifest
from corpora_manifests.rejects import read_rejects
from corpora_manifests.shards import iter_rows, verify_manifest
from curation.pipelines.extract import ExtractConfig, build_extract_steps, run_extract
from curation.readers.files import DocumentReader, list_input_files


@pytest.fixture(scope="module")
def run(fixtures_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("extract") / "out"
    inputs = [str(fixtures_dir / "generated"), str(fixtures_dir / "broken"), str(fixtures_dir / "html" / "govcn")]
    cfg = ExtractConfig(inputs=inputs, output=str(out), workers=2, source="fixtures")
    run_extract(cfg, command="test")
    return cfg, out


def test_manifest_shards_and_rejects(run):
    cfg, out = run
    m = load_manifest(out)
    assert m.stage == "cpt" and m.tokenizer.name == "qwen2.5" and verify_manifest(out) == []
    assert len(m.shards) == 2  # one set of shards per datatrove rank
    assert m.producer.config["executor"]["workers"] == 2 and m.producer.config_sha256
    rows = list(iter_rows(out))
    assert rows and all(r["n_tokens"] > 0 and r["source"] == "fixtures" for r in rows)
    md = rows[0]["metadata"]
    assert {"extractor", "file_path", "quality.cjk_ratio"} <= set(md)
    assert m.stats["rejects"]["read"]["wrong_extension"] == 2
    assert (out / "stats.md").exists() and "| read | empty_file | 2 |" in (out / "stats.md").read_text()
    assert "wrong_extension" in (out / "report.html").read_text(encoding="utf-8")


def test_no_input_file_vanishes(run):
    cfg, out = run
    rel = DocumentReader(cfg.inputs)._rel  # ids and paths are relative to the inputs' common directory
    listed = {rel(p) for p in list_input_files(cfg.inputs)}
    kept = {r["metadata"]["file_path"] for r in iter_rows(out)}
    assert not any(p.startswith("/") for p in kept)
    rejected = {r["path"] for r in read_rejects(out / "rejects")}
    assert listed == kept | rejected
    gb = [r for r in iter_rows(out) if r["metadata"]["file_path"].endswith("govcn_gb18030.html")]
    assert gb and "国务院办公厅" in gb[0]["text"]


def test_rerun_is_a_noop_and_other_config_is_refused(run):
    cfg, out = run
    before = (out / "manifest.json").read_text()
    assert run_extract(cfg) == out
    assert (out / "manifest.json").read_text() == before
    with pytest.raises(UserError):
        run_extract(cfg.model_copy(update={"name": "other"}))


def test_steps_compose_without_writer(fixtures_dir):
    cfg = ExtractConfig(inputs=[str(fixtures_dir / "generated" / "law_zh.docx")])
    steps = build_extract_steps(cfg)
    assert [type(s).__name__ for s in steps] == ["DocumentReader", "ZhNormalizer", "BoilerplateLineRemover",
                                                  "ZhQualityFilter", "ZhPIIRedactor"]
    data = None
    for s in steps:
        data = s.run(data)
    (doc,) = list(data)
    assert doc.metadata["quality.cjk_ratio"] > 0.8


def test_cli_bad_config_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [x]\nquality:\n  thresholds:\n    min_chars: -oops\n", encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "soaes.cli", "curate", "extract", "--config", str(bad), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "quality.thresholds.min_chars" in p.stderr


def test_demo_config_validates(fixtures_dir):
    from pathlib import Path

    from corpora_manifests.config import load_config

    repo = Path(__file__).resolve().parents[2]
    for name in ("configs/curate_extract.yaml", "configs/demo/curate_extract.yaml"):
        cfg, _ = load_config(repo / name, ExtractConfig)
        assert cfg.quality.thresholds.min_chars == 100


def test_interrupted_run_resumes(run):
    """Rank 1 'crashed' (no completion marker, no sidecar, a half-written shard): only it re-runs."""
    cfg, out = run
    before = load_manifest(out)
    rank0 = (out / "data" / "part-r00000-00000.parquet").stat().st_mtime_ns
    (out / "manifest.json").unlink()
    (out / "logs" / "extract" / "completions" / "00001").unlink()
    (out / ".parts" / "r00001.json").unlink()
    (out / "data" / "part-r00001-00003.parquet.tmp").write_bytes(b"half")
    run_extract(cfg)
    after = load_manifest(out)
    assert after.totals.records == before.totals.records and verify_manifest(out) == []
    assert (out / "data" / "part-r00000-00000.parquet").stat().st_mtime_ns == rank0  # rank 0 was skipped
    assert not (out / "data" / "part-r00001-00003.parquet.tmp").exists()
    assert after.stats["rejects"] == before.stats["rejects"]  # rank 1's rejects rewritten, not duplicated
