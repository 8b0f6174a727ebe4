"""curation.dedup on the committed fixtures: real rensa signatures, real datatrove executors, real
Qwen2.5 token counts. tests/fixtures/dedup/docs.jsonl holds 16 distinct law excerpts plus: b00-exact
(b00 with other whitespace), b01-near-1/2 (b01 with ~0.5 % edits, 5-gram Jaccard 0.87-0.93),
b02-far (b02 with 12 % edits, Jaccard 0.33), and short documents s1 "通知", s2 "通 知", s3 "公告",
s4 "通知！". broken.jsonl has one good line, a truncated JSON line, one without text, one blank text."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures" / "dedup"


def soaes(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the real `soaes` entry point in-process (a subprocess would re-import everything)."""
    from soaes.cli import main

    old = sys.argv
    sys.argv = ["soaes", *args]
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _fixture_in_parts(tmp_path: Path, parts: int) -> tuple[list[dict], Path]:
    """The fixture documents dealt round-robin into ``parts`` JSONL files under tmp_path/in."""
    docs = [json.loads(line) for line in (FIX / "docs.jsonl").open(encoding="utf-8")]
    inp = tmp_path / "in"
    inp.mkdir()
    for k in range(parts):
        with (inp / f"part{k}.jsonl").open("w", encoding="utf-8") as f:
            for d in docs[k::parts]:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return docs, inp


def _clusters(out: Path) -> dict[frozenset, str]:
    df = pl.read_parquet(out / "clusters.parquet")
    groups: dict[int, list] = {}
    for row in df.iter_rows(named=True):
        groups.setdefault(row["cluster_id"], []).append(row)
    return {frozenset(r["id"] for r in rows): next(r["id"] for r in rows if r["kept"]) for rows in groups.values()}


def test_signatures_estimate_char_ngram_jaccard(fixtures_dir):
    from curation.dedup.shingles import ngram_hashes, normalise, signatures

    docs = {d["id"]: d["text"] for d in map(json.loads, (FIX / "docs.jsonl").open(encoding="utf-8"))}
    pairs = [("b01", "b01-near-1"), ("b01", "b01-near-2"), ("b02", "b02-far"), ("b03", "b04")]
    for a, b in pairs:
        ha, hb = (ngram_hashes(normalise(docs[x]), 5) for x in (a, b))
        ua, ub = np.unique(ha), np.unique(hb)
        inter = len(np.intersect1d(ua, ub))
        exact = inter / (len(ua) + len(ub) - inter)
        sig = signatures([ha, hb], 112, 1)
        est = float((sig[0] == sig[1]).mean())
        assert abs(est - exact) < 0.15, (a, b, est, exact)  # 112 hashes: sd <= 0.05


def test_short_documents_have_no_ngrams_and_normalise_whitespace():
    from curation.dedup.shingles import exact_hash, ngram_hashes, normalise

    assert len(ngram_hashes(normalise("通知"), 5)) == 0
    assert exact_hash(normalise("通 知\n")) == exact_hash(normalise("通知"))
    assert exact_hash(normalise("ＡＢＣ１２３")) == exact_hash(normalise("abc123"))  # NFKC + casefold
    assert exact_hash(normalise("通知！")) != exact_hash(normalise("通知"))


def test_connected_components_join_across_chunks_and_passes():
    from curation.dedup.cluster import connected_components

    chunks = [(np.array([5, 7, 9]), np.array([6, 8, 3])), (np.array([6, 1, 8]), np.array([7, 2, 9]))]
    labels = connected_components(10, lambda: iter(chunks))
    assert labels.tolist() == [0, 1, 1, 3, 4, 3, 3, 3, 3, 3]


def test_curate_dedup_cli_on_fixtures(tmp_path, qwen_tokenizer, capsys):
    from corpora_manifests.models import load_manifest
    from corpora_manifests.shards import iter_rows, verify_manifest
    from corpora_manifests.tokenizer import count_tokens

    out = tmp_path / "out"
    cmd = ["curate", "dedup", str(FIX / "docs.jsonl"), str(FIX / "broken.jsonl"), "--output", str(out),
           "--threshold", "0.8", "--ngram", "5", "--workers", "1", "--keep", "longest"]
    code, stdout, _ = soaes(cmd, capsys)
    assert code == 0
    assert "4 removed (2 exact, 2 near) in 3 clusters" in stdout

    clusters = _clusters(out)
    docs = {d["id"]: d["text"] for d in map(json.loads, (FIX / "docs.jsonl").open(encoding="utf-8"))}
    b01 = frozenset({"b01", "b01-near-1", "b01-near-2"})
    assert clusters == {
        frozenset({"b00", "b00-exact"}): "b00-exact",          # keep=longest: the copy with extra whitespace
        b01: max(sorted(b01), key=lambda i: len(docs[i])),
        frozenset({"s1", "s2"}): "s2",                           # short documents: exact-hash dedup only
    }
    cdf = pl.read_parquet(out / "clusters.parquet")
    assert {"id", "cluster_id", "cluster_size", "kept"} <= set(cdf.columns)
    assert sorted(cdf["cluster_size"].to_list()) == [2, 2, 2, 2, 3, 3, 3]

    removed = pl.concat([pl.read_parquet(p) for p in sorted((out / "removed").glob("*.parquet"))])
    reasons = dict(zip(removed["id"].to_list(), removed["reason"].to_list()))
    assert set(reasons) == {i for c in clusters for i in c} - set(clusters.values())
    assert reasons["s1"] == "exact" and reasons["b00"] == "exact"
    assert all(reasons[i] == "near" for i in reasons if i.startswith("b01"))
    assert set(removed["cluster_id"].to_list()) <= set(cdf["cluster_id"].to_list())

    manifest = load_manifest(out)
    assert manifest.stage == "cpt" and manifest.tokenizer.name == "qwen2.5"
    assert verify_manifest(out) == []
    rows = list(iter_rows(out))
    ids = {r["id"] for r in rows}
    all_ids = {d["id"] for d in map(json.loads, (FIX / "docs.jsonl").open(encoding="utf-8"))} | {"ok1"}
    assert ids == all_ids - set(reasons)
    assert {"b02-far", "s3", "s4"} <= ids                      # not duplicates: kept
    assert [r["n_tokens"] for r in rows] == count_tokens(qwen_tokenizer, [r["text"] for r in rows])
    kept_b01 = next(r for r in rows if r["id"] == clusters[frozenset({"b01", "b01-near-1", "b01-near-2"})])
    assert kept_b01["metadata"]["dedup.cluster_size"] == 3

    stats = manifest.stats["dedup"]
    assert stats["removed_documents"] == len(reasons) == 4
    assert stats["cluster_size_histogram"] == {"2": 2, "3": 1}
    assert stats["removed_tokens"] == sum(removed["n_tokens"].to_list()) > 0
    assert stats["removed_bytes"] == sum(len(t.encode()) for t in removed["text"].to_list())
    assert manifest.stats["rejects"]["input"] == {"invalid_json": 1, "no_text": 2}
    assert (out / "report.html").read_text(encoding="utf-8").count("data:image/png;base64,") == 4

    # a finished run is a no-op
    before = (out / "manifest.json").stat().st_mtime_ns
    code, stdout, _ = soaes(cmd, capsys)
    assert code == 0 and "already complete" in stdout
    assert (out / "manifest.json").stat().st_mtime_ns == before
    code, _, err = soaes([*cmd[:-1], "first"], capsys)  # another keep rule into the same directory
    assert code == 2 and "another config" in err


def test_keep_newest_with_partitioned_buckets_and_shards(tmp_path):
    """Two input shards, 3 hash-range partitions per band: same clusters; keep=newest uses `date`."""
    from curation.dedup.pipeline import run_dedup

    docs, inp = _fixture_in_parts(tmp_path, 2)
    out = run_dedup({"input": [str(inp)], "output": str(tmp_path / "out"), "count_tokens": False, "report": False,
                     "dedup": {"keep": "newest", "bucket_partitions": 3},
                     "executor": {"tasks": 2, "workers": 1}})
    clusters = _clusters(out)
    assert set(clusters) == {frozenset({"b00", "b00-exact"}), frozenset({"b01", "b01-near-1", "b01-near-2"}),
                             frozenset({"s1", "s2"})}
    dates = {d["id"]: d.get("date") for d in docs}
    assert clusters[frozenset({"b01", "b01-near-1", "b01-near-2"})] == "b01-near-2"   # 2031 beats 2030
    b00_kept = clusters[frozenset({"b00", "b00-exact"})]
    assert b00_kept == max(["b00", "b00-exact"], key=lambda i: dates[i] or "")
    assert len(list((out / "dedup_work" / "edges").glob("*.npy"))) == 15 * 3


def test_bad_input_and_bad_config_are_one_line_user_errors(tmp_path, capsys):
    code, _, err = soaes(["curate", "dedup", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o")], capsys)
    assert code == 2
    assert err.strip().startswith("error: input not found") and len(err.strip().splitlines()) == 1
    code, _, err = soaes(["curate", "dedup", str(FIX / "docs.jsonl"), "--output", str(tmp_path / "o"),
                          "--set", "dedup.keep=oldest"], capsys)
    assert code == 2 and "dedup.keep" in err and len(err.strip().splitlines()) == 1


def test_bucket_windows_give_the_same_edges_and_clusters(tmp_path):
    """The bucket stage merges the ranks' sorted band files window by window (memory = one window):
    windows of ~2 records (every bucket still whole in one window) give the same duplicate edges and a
    byte-identical clusters.parquet as one window holding everything."""
    from curation.dedup.pipeline import run_dedup

    _, inp = _fixture_in_parts(tmp_path, 3)
    outs = {}
    for window in (1 << 20, 2):
        outs[window] = run_dedup({"input": [str(inp)], "output": str(tmp_path / f"w{window}"), "count_tokens": False,
                                  "report": False, "dedup": {"bucket_window": window},
                                  "executor": {"tasks": 3, "workers": 1}})

    def edges(out):
        return {f.name: np.sort(np.load(f)) for f in sorted((out / "dedup_work" / "edges").glob("*.npy"))}

    big, small = edges(outs[1 << 20]), edges(outs[2])
    assert big.keys() == small.keys()
    assert sum(len(e) for e in big.values()) > 0
    for name in big:
        assert np.array_equal(big[name], small[name]), name
    assert (outs[2] / "clusters.parquet").read_bytes() == (outs[1 << 20] / "clusters.parquet").read_bytes()
    assert set(_clusters(outs[2])) == {frozenset({"b00", "b00-exact"}), frozenset({"b01", "b01-near-1", "b01-near-2"}),
                                       frozenset({"s1", "s2"})}
