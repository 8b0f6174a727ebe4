import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpora_manifests.models import Manifest, ManifestError, load_manifest
from corpora_manifests.provenance import make_provenance
from corpora_manifests.shards import CPT_SCHEMA, SFT_SCHEMA, ShardWriter, iter_rows, verify_manifest
from corpora_manifests import exports


def _law_rows(fixtures_dir, n=None):
    rows = []
    with open(fixtures_dir / "laws" / "laws_sample.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            rows.append({"id": r["id"], "text": r["text"], "source": "lawrefbook", "n_tokens": len(r["text"]) // 2,
                         "metadata": {"title": r["title"], "date": r["version_date"]}})
    return rows[:n] if n else rows


def _write(tmp_path, rows, target_bytes=60_000, split=None):
    with ShardWriter(tmp_path, CPT_SCHEMA, target_bytes=target_bytes, row_group_rows=8, split=split) as w:
        w.write_many(rows)
    m = Manifest(name="laws-test", stage="cpt", producer=make_provenance(command="pytest"), shards=w.shards)
    m.write(tmp_path)
    return m


def test_shardwriter_rolls_shards_and_counts(tmp_path, fixtures_dir):
    rows = _law_rows(fixtures_dir)
    m = _write(tmp_path, rows)
    assert len(m.shards) > 2, "a small target size must produce several shards"
    assert m.totals.records == len(rows)
    assert m.totals.tokens == sum(r["n_tokens"] for r in rows)
    for s in m.shards:
        assert (tmp_path / s.path).exists() and s.path.endswith(".parquet")
        md = pq.ParquetFile(tmp_path / s.path).metadata
        assert md.num_rows == s.records
        assert md.row_group(0).column(0).compression == "ZSTD"
    assert not list(tmp_path.rglob("*.tmp")), "no temp files left behind"
    back = list(iter_rows(tmp_path))
    assert [r["id"] for r in back] == [r["id"] for r in rows]
    assert back[0]["metadata"]["title"] == rows[0]["metadata"]["title"]


def test_sft_schema_roundtrip(tmp_path):
    rows = [{"id": f"s{i}", "messages": [{"role": "user", "content": "什么是国有资产？"},
                                          {"role": "assistant", "content": "国家出资形成的权益。"}],
             "source": "t", "n_tokens": 12, "metadata": {}} for i in range(5)]
    with ShardWriter(tmp_path, SFT_SCHEMA, split="train") as w:
        w.write_many(rows)
    m = Manifest(name="sft", stage="sft_stage2", producer=make_provenance(command="pytest"), shards=w.shards)
    m.write(tmp_path)
    assert m.splits["train"].records == 5
    assert list(iter_rows(tmp_path))[0]["messages"][1]["role"] == "assistant"


def test_load_manifest_names_bad_field(tmp_path, fixtures_dir):
    _write(tmp_path, _law_rows(fixtures_dir, 10))
    data = json.loads((tmp_path / "manifest.json").read_text())
    data["shards"][0]["records"] = -3
    data["stage"] = "pretraining"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError) as e:
        load_manifest(tmp_path)
    assert "shards.0.records" in str(e.value) and "stage" in str(e.value)


def test_manifest_rejects_unknown_keys_and_escaping_paths(tmp_path, fixtures_dir):
    _write(tmp_path, _law_rows(fixtures_dir, 5))
    data = json.loads((tmp_path / "manifest.json").read_text())
    data["shards"][0]["path"] = "../outside.parquet"
    data["totalz"] = {}
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError) as e:
        load_manifest(tmp_path)
    assert "shards.0.path" in str(e.value) and "totalz" in str(e.value)


def test_provenance_never_records_secrets():
    p = make_provenance({"llm": {"api_key": "sk-secret", "model": "glm-4"}}, command="x")
    assert "sk-secret" not in p.model_dump_json()
    assert p.config["llm"]["model"] == "glm-4" and p.config_sha256


def _soaes(*args):
    return subprocess.run([sys.executable, "-m", "soaes.cli", *args], capture_output=True, text=True)


def test_cli_verify_names_flipped_and_truncated_shards(tmp_path, fixtures_dir):
    m = _write(tmp_path, _law_rows(fixtures_dir))
    ok = _soaes("manifest", "verify", str(tmp_path))
    assert ok.returncode == 0, ok.stderr
    flipped, truncated = m.shards[0].path, m.shards[1].path
    p = tmp_path / flipped
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    t = tmp_path / truncated
    t.write_bytes(t.read_bytes()[:-100])
    bad = _soaes("manifest", "verify", str(tmp_path))
    assert bad.returncode == 1
    assert f"{flipped}: altered" in bad.stderr and f"{truncated}: truncated" in bad.stderr
    assert {p.path for p in verify_manifest(tmp_path)} == {flipped, truncated}


def test_cli_show_schema_export(tmp_path, fixtures_dir):
    _write(tmp_path, _law_rows(fixtures_dir, 30))
    show = _soaes("manifest", "show", str(tmp_path))
    assert show.returncode == 0 and "laws-test" in show.stdout
    schema = json.loads(_soaes("manifest", "schema").stdout)
    assert "shards" in schema["properties"]
    lf = json.loads(_soaes("manifest", "export", str(tmp_path), "--to", "llamafactory").stdout)
    assert lf["laws-test"]["columns"] == {"prompt": "text"}
    assert "load_dataset('parquet'" in _soaes("manifest", "export", str(tmp_path), "--to", "hf").stdout
    missing = _soaes("manifest", "verify", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no manifest" in missing.stderr


def test_hf_datasets_loads_the_shards(tmp_path, fixtures_dir):
    _write(tmp_path, _law_rows(fixtures_dir, 40), split="train")
    ds = exports.load_hf_dataset(tmp_path)
    assert ds["train"].num_rows == 40 and set(ds["train"].column_names) == set(CPT_SCHEMA.names)
