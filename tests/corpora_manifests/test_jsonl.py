from corpora_manifests.jsonl import iter_jsonl


def test_bad_lines_are_reported_not_fatal(fixtures_dir, tmp_path):
    got = list(iter_jsonl(fixtures_dir / "broken" / "invalid_utf8.jsonl"))
    assert [r["id"] for _, r, p in got if p is None] == ["ok-1", "ok-2"]
    problems = [(n, p.split(":")[0]) for n, r, p in got if p is not None]
    assert problems == [(2, "invalid_utf8"), (3, "invalid_json")]
    f = tmp_path / "list.jsonl"
    f.write_text('[1, 2]\n\n{"a": 1}\n', encoding="utf-8")
    assert [(n, p and p.split(":")[0]) for n, _, p in iter_jsonl(f)] == [(1, "not_an_object"), (3, None)]


def test_compressed_files_raw_text_and_lines_opened_elsewhere(fixtures_dir, tmp_path):
    import gzip

    from corpora_manifests.jsonl import iter_jsonl_lines, records, split_problem

    raw = (fixtures_dir / "broken" / "invalid_utf8.jsonl").read_bytes()
    gz = tmp_path / "x.jsonl.gz"
    gz.write_bytes(gzip.compress(raw))
    plain = list(iter_jsonl(fixtures_dir / "broken" / "invalid_utf8.jsonl"))
    assert list(iter_jsonl(gz)) == plain  # decompressed by extension
    got = list(iter_jsonl_lines(raw.splitlines(), with_raw=True, start=0))
    assert [n for n, *_ in got] == [n - 1 for n, *_ in plain]
    bad = [(split_problem(p)[0], r) for _, _, p, r in got if p is not None]
    assert bad[1][0] == "invalid_json" and bad[1][1] == raw.splitlines()[2].decode("utf-8")[:500]
    assert [r["id"] for r in records(gz)] == ["ok-1", "ok-2"]
    assert [rec for _, rec, _ in iter_jsonl_lines(["[1]", "2"], objects_only=False)] == [[1], 2]
