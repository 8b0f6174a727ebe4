"""The one finished-run policy (corpora_manifests.runs): hashing, changed keys, redaction."""
import pytest

from corpora_manifests.errors import UserError
from corpora_manifests.provenance import make_provenance
from corpora_manifests.runs import changed_keys, check_run, config_hash, decide, redact_credentials


def test_redaction_hides_credentials_only():
    cfg = {"tokenizer": "qwen2.5", "llm": {"api_key": "sk-123", "max_tokens": 2048, "tokens_per_minute": 9000,
                                          "api_key_env": "ZHIPUAI_API_KEY", "password": "hunter2",
                                          "headers": {"Authorization": "Bearer abc.def"}},
           "db": {"url": "x", "token": "t0k"}, "n_tokens": 5, "note": "Bearer xyz"}
    red = redact_credentials(cfg)
    assert red["tokenizer"] == "qwen2.5" and red["n_tokens"] == 5
    assert red["llm"]["max_tokens"] == 2048 and red["llm"]["tokens_per_minute"] == 9000
    assert red["llm"]["api_key_env"] == "ZHIPUAI_API_KEY"
    assert red["llm"]["api_key"] == red["llm"]["password"] == red["db"]["token"] == "<redacted>"
    assert red["llm"]["headers"]["Authorization"] == "<redacted>" and red["note"] == "<redacted>"


def test_provenance_hashes_the_unredacted_effective_config():
    a = make_provenance({"tokenizer": "qwen2.5", "api_key": "k1"}, config_text="ignored", command="x")
    b = make_provenance({"tokenizer": "other", "api_key": "k1"}, config_text="ignored", command="x")
    assert a.config["tokenizer"] == "qwen2.5" and a.config["api_key"] == "<redacted>"
    assert a.config_sha256 == config_hash({"tokenizer": "qwen2.5", "api_key": "k1"}) != b.config_sha256


def test_check_run_states_and_policy(tmp_path):
    old = {"tokenizer": "qwen2.5", "dedup": {"threshold": 0.8, "ngram": 5}}
    recorded = {"config": redact_credentials(old), "config_sha256": config_hash(old)}
    assert check_run(tmp_path, old, None).state == "absent"
    same = check_run(tmp_path, old, recorded)
    assert same.state == "up_to_date" and decide(same) is True and "up to date" in same.message
    new = {"tokenizer": "other", "dedup": {"threshold": 0.9, "ngram": 5}}
    changed = check_run(tmp_path, new, recorded)
    assert changed.state == "changed" and changed.changed == ["dedup.threshold", "tokenizer"]
    with pytest.raises(UserError, match="dedup.threshold, tokenizer"):
        decide(changed)
    assert decide(changed, force=True) is False
    broken = check_run(tmp_path, old, recorded, ["data/part-0.parquet: missing"])
    assert broken.state == "incomplete" and decide(broken) is False


def test_changed_keys_reports_changed_and_added_keys():
    # "a" only in the recorded echo: a location key the effective config leaves out
    assert changed_keys({"a": 1, "b": {"c": [1]}}, {"b": {"c": [1, 2]}, "d": None}) == ["b.c", "d"]


def test_changed_keys_name_the_list_item():
    old = {"stages": [{"name": "s1", "learning_rate": 1e-6}, {"name": "s2", "learning_rate": 3.5e-6}]}
    new = {"stages": [{"name": "s1", "learning_rate": 1e-6}, {"name": "s2", "learning_rate": 1e-4}]}
    assert changed_keys(old, new) == ["stages.1.learning_rate"]


def test_a_setting_added_by_a_newer_version_is_not_a_changed_config(tmp_path):
    old = {"chunking": {"max_tokens": 1024}}
    recorded = {"config": old, "config_sha256": config_hash(old)}
    newer = {"chunking": {"max_tokens": 1024, "executor": {"kind": "local"}}}  # a new field at its default
    assert check_run(tmp_path, newer, recorded).state == "up_to_date"
    assert check_run(tmp_path, {"chunking": {"max_tokens": 512, "executor": {}}}, recorded).changed == ["chunking.max_tokens"]
