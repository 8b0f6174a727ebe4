"""Data only through verified manifests; tokenised cache keyed by manifest + tokenizer + seq_len."""
import json
import shutil

import pytest

from corpora_manifests.errors import UserError
from corpora_manifests.shards import sha256_file
from training.manifest_inputs import open_manifest
from training.token_cache import tokenize_manifest


def test_consumed_manifest_records_hashes_and_split(train_fixtures):
    src = open_manifest(train_fixtures / "sft_stage2", "sft", split="train")
    c = src.consumed
    assert c.manifest_sha256 == sha256_file(train_fixtures / "sft_stage2" / "manifest.json")
    assert c.split == "train" and c.records == 25
    assert all(s["path"].startswith("data/train/") and len(s["sha256"]) == 64 for s in c.shards)
    # A manifest without splits is read whole whatever the stage's split says.
    assert open_manifest(train_fixtures / "sft_stage1", "sft", split="train").consumed.split is None


def test_altered_shard_stops_the_run(train_fixtures, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(train_fixtures / "cpt", d)
    shard = next((d / "data").glob("*.parquet"))
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="failed hash verification.*altered"):
        open_manifest(d, "cpt")


def test_wrong_stage_and_missing_split_are_user_errors(train_fixtures, tmp_path):
    with pytest.raises(UserError, match="reads only"):
        open_manifest(train_fixtures / "cpt", "sft")
    with pytest.raises(UserError, match="no split 'test'"):
        open_manifest(train_fixtures / "sft_stage2", "sft", split="test")
    d = tmp_path / "eval"
    shutil.copytree(train_fixtures / "sft_stage2", d)
    m = json.loads((d / "manifest.json").read_text())
    m["stage"] = "eval"
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="eval data never enters training"):
        open_manifest(d, "sft")
    with pytest.raises(UserError, match="no manifest"):
        open_manifest(tmp_path / "nowhere", "sft")


def test_cache_is_reused_and_keyed_by_seq_len(qwen_tokenizer, train_fixtures, tmp_path):
    src = open_manifest(train_fixtures / "sft_stage1", "sft")
    a = tokenize_manifest(src, qwen_tokenizer, kind="sft", seq_len=1024, cache_dir=tmp_path, progress=False)
    stamp = (a.path / "tokens.bin").stat().st_mtime_ns
    b = tokenize_manifest(src, qwen_tokenizer, kind="sft", seq_len=1024, cache_dir=tmp_path, progress=False)
    assert b.path == a.path and (b.path / "tokens.bin").stat().st_mtime_ns == stamp  # reused, not rebuilt
    c = tokenize_manifest(src, qwen_tokenizer, kind="sft", seq_len=256, cache_dir=tmp_path, progress=False)
    assert c.key != a.key
    # Bad rows never vanish: the malformed sample and the exchanges longer than seq_len are kept
    # with reasons; longer conversations are split at turn boundaries, never truncated.
    reasons = [r["reason"] for r in c.meta["rejects"]]
    assert "no_assistant_reply" in reasons and "longer_than_seq_len" in reasons
    assert c.meta["split_conversations"] > 0 and c.n_docs > a.n_docs - 1 and int(c.lengths.max()) <= 256
    ends_with_reply = qwen_tokenizer.convert_tokens_to_ids("<|im_end|>")
    for k in range(c.n_docs):  # every piece is a whole conversation ending in a trained reply
        piece_mask = c.loss_mask[c.offsets[k]:c.offsets[k + 1]]
        assert piece_mask.any() and int(c.tokens[c.offsets[k + 1] - 2]) == ends_with_reply
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written entries left


def test_cpt_tokens_end_with_separator(qwen_tokenizer, train_fixtures, tmp_path):
    src = open_manifest(train_fixtures / "cpt", "cpt")
    t = tokenize_manifest(src, qwen_tokenizer, kind="cpt", seq_len=512, cache_dir=tmp_path, progress=False)
    eot = qwen_tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert all(int(t.tokens[e - 1]) == eot for e in t.offsets[1:])
    assert t.meta["rejects"] == [{"id": "broken-empty", "reason": "empty_text"}]
    assert t.meta["tokens"] == sum(s["tokens"] for s in src.consumed.shards) + t.n_docs
