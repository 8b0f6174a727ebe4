from datatrove.data import Document

from corpora_manifests.models import load_manifest
from corpora_manifests.provenance import make_provenance
from corpora_manifests.shards import iter_rows, verify_manifest
from curation.writers import PARTS_DIR, ShardsWriter, finalize_manifest


def _docs(prefix, n):
    return [Document(text=f"第{i}条 国有资产{prefix}。", id=f"{prefix}-{i}",
                     metadata={"source": "laws", "quality.cjk_ratio": 0.9, "n_tokens": 7}) for i in range(n)]


def test_ranks_merge_into_one_manifest(tmp_path):
    for rank in (0, 1):
        list(ShardsWriter(tmp_path, tokenizer=None).run(iter(_docs(f"r{rank}", 3 + rank)), rank=rank, world_size=2))
    assert sorted(p.name for p in (tmp_path / PARTS_DIR).iterdir()) == ["r00000.json", "r00001.json"]
    m = finalize_manifest(tmp_path, "t", "cpt", make_provenance({"a": 1}, command="test"),
                          stats={"counts": {"x": 1}})
    assert m.totals.records == 7 and m.totals.tokens == 49
    assert [s.path for s in m.shards] == ["data/part-r00000-00000.parquet", "data/part-r00001-00000.parquet"]
    assert verify_manifest(tmp_path) == []
    rows = list(iter_rows(tmp_path))
    assert rows[0]["source"] == "laws" and rows[0]["metadata"] == {"quality.cjk_ratio": 0.9}
    assert load_manifest(tmp_path).stats["rejects"] == {}


def test_rerun_of_a_rank_replaces_its_shards(tmp_path):
    list(ShardsWriter(tmp_path, tokenizer=None).run(iter(_docs("a", 4)), rank=0))
    # leftovers of a crashed, longer attempt of the same rank; rank 1's shard must survive
    (tmp_path / "data" / "part-r00000-00007.parquet").write_bytes(b"stale")
    (tmp_path / "data" / "part-r00000-00008.parquet.tmp").write_bytes(b"stale")
    list(ShardsWriter(tmp_path, tokenizer=None).run(iter(_docs("c", 1)), rank=1))
    list(ShardsWriter(tmp_path, tokenizer=None).run(iter(_docs("b", 2)), rank=0))
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["part-r00000-00000.parquet",
                                                                      "part-r00001-00000.parquet"]
    m = finalize_manifest(tmp_path, "t", "cpt", make_provenance(None, command="test"))
    assert m.totals.records == 3 and verify_manifest(tmp_path) == []


def test_counts_tokens_when_missing(tmp_path, qwen_tokenizer):
    docs = [Document(text="你好", id="1", metadata={})]
    list(ShardsWriter(tmp_path, default_source="demo").run(iter(docs)))
    m = finalize_manifest(tmp_path, "t", "cpt", make_provenance(None, command="test"))
    (row,) = list(iter_rows(tmp_path))
    assert row["n_tokens"] == 1 and row["source"] == "demo" and m.totals.tokens == 1
