"""`soaes curate run configs/demo/curate_run.yaml` on the bundled fixtures: laws JSONL, gov.cn HTML,
generated PDF/DOCX/GB18030 HTML and broken files → deduplicated, token-counted CPT shards, a cpt
manifest, rejects for every broken file, clusters, removed/, and an HTML report with four plots."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[2]


def test_curate_run_demo_config(tmp_path, qwen_tokenizer, capsys, monkeypatch):
    from corpora_manifests.models import load_manifest
    from corpora_manifests.shards import iter_rows, verify_manifest
    from corpora_manifests.tokenizer import count_tokens
    from soaes.cli import main

    monkeypatch.chdir(REPO)  # the demo config's paths are relative to the repository
    out = tmp_path / "cpt"
    monkeypatch.setattr(sys, "argv", ["soaes", "curate", "run", "configs/demo/curate_run.yaml", "--output", str(out)])
    try:
        main()
    except SystemExit as e:
        assert e.code in (0, None)
    stdout = capsys.readouterr().out
    assert "removed" in stdout and str(out / "report.html") in stdout

    m = load_manifest(out)
    assert m.stage == "cpt" and m.name == "demo_cpt" and m.tokenizer.name == "qwen2.5"
    assert m.producer.config["dedup"]["keep"] == "newest" and len(m.producer.config_sha256) == 64
    assert verify_manifest(out) == []
    rows = list(iter_rows(out))
    assert [r["n_tokens"] for r in rows] == count_tokens(qwen_tokenizer, [r["text"] for r in rows])
    paths = {r["metadata"].get("file_path", "") for r in rows}
    for kind in ("govcn_001.html", "laws_sample.jsonl"):
        assert any(kind in p for p in paths), kind

    # every broken fixture is a reject with a reason, none kills the run
    rejects = m.stats["rejects"]
    assert sum(rejects.get("read", {}).values()) >= 7
    # the laws sample holds dated versions of one law: some are near-duplicates, the newest is kept
    d = m.stats["dedup"]
    assert d["removed_near"] >= 1 and d["removed_documents"] == d["removed_exact"] + d["removed_near"]
    clusters = pl.read_parquet(out / "clusters.parquet")
    removed = pl.concat([pl.read_parquet(p) for p in (out / "removed").glob("*.parquet")])
    assert len(removed) == d["removed_documents"] == int((~clusters["kept"]).sum())
    kept_ids = {r["id"] for r in rows}
    # cross-format duplicates: the generated PDF and DOCX render laws that are also JSONL records,
    # and the GB18030 page exists twice (with and without a charset declaration)
    by_id = {r["id"]: r for r in removed.iter_rows(named=True)}
    for name, reason in (("law_zh.pdf", "near"), ("law_zh.docx", "near"), ("govcn_gb18030_nometa.html", "exact")):
        row = next(r for i, r in by_id.items() if i.endswith(name))
        assert row["reason"] == reason, name
        assert row["kept_id"] in kept_ids
    assert "laws_sample.jsonl" in next(r for i, r in by_id.items() if i.endswith("law_zh.pdf"))["kept_id"]
    assert set(removed["kept_id"].to_list()) <= kept_ids and not (set(removed["id"].to_list()) & kept_ids)
    dates = {r["id"]: r["metadata"].get("version_date") for r in rows}
    for row in removed.iter_rows(named=True):
        md = json.loads(row["metadata"])
        if md.get("version_date") and dates.get(row["kept_id"]):
            assert dates[row["kept_id"]] >= md["version_date"]
    assert m.totals.tokens == sum(r["n_tokens"] for r in rows)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 4
    for title in ("Length distribution", "Drop reasons", "Cluster sizes", "Tokens per source"):
        assert title in html
