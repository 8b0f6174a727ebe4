from corpora_manifests.jsonl import iter_jsonl


def test_bad_lines_are_reported_not_fatal(fixtures_dir, tmp_path):
    got = list(iter_jsonl(fixtures_dir / "broken" / "invalid_utf8.jsonl"))
    assert [r["id"] for _, r, p in got if p is None] == ["ok-1", "ok-2"]
    problems = [(n, p.split(":")[0]) for n, r, p in got if p is not None]
    assert problems == [(2, "invalid_utf8"), (3, "invalid_json")]
    f = tmp_path / "list.jsonl"
    f.write_text('[1, 2]\n\n{"a": 1}\n', encoding="utf-8")
    assert [(n, p and p.split(":")[0]) for n, _, p in iter_jsonl(f)] == [(1, "not_an_object"), (3, None)]
