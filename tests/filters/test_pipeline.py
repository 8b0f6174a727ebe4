import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from corpora_manifests.errors import UserError
from corpora_manifests.models import load_manifest
from corpora_manifests.rejects import read_rejects
from corpora_manifests.shards import SFT_SCHEMA, iter_rows, verify_manifest
from corpora_manifests.tokenizer import count_tokens
from filters.cli import app
from filters.pipeline import run_filters

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, **extra) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "demo" / "filters_stage1.yaml").read_text(encoding="utf-8"))
    for i in cfg["inputs"]:
        i["path"] = str(REPO / i["path"])
    for e in cfg["decontam"]["eval_sets"]:
        e["path"] = str(REPO / e["path"])
    cfg["output"] = str(tmp_path / "out")
    cfg.update(extra)
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, fixtures_dir):
    tmp = tmp_path_factory.mktemp("stage1")
    # A contaminated sample (a LawBench question asked verbatim) and the malformed records join the demo inputs.
    lb = json.loads((fixtures_dir / "eval" / "lawbench_sample.jsonl").open(encoding="utf-8").readline())
    contaminated = tmp / "contaminated.jsonl"
    contaminated.write_text(json.dumps({"id": "leak-1", "instruction": lb["instruction"] + lb["question"],
                                        "output": lb["reference"]}, ensure_ascii=False) + "\n", encoding="utf-8")
    cfg = _config(tmp)
    data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    data["inputs"] += [{"path": str(contaminated), "source": "contaminated"},
                       {"path": str(fixtures_dir / "filters" / "malformed.jsonl"), "source": "malformed"}]
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    r = CliRunner().invoke(app, ["run", str(cfg)])
    assert r.exit_code == 0, r.output
    return Path(data["output"]), cfg, r.output


def test_outputs_manifest_shards_and_counts(demo_run, qwen_tokenizer):
    out, _, _ = demo_run
    m = load_manifest(out)
    assert m.stage == "sft_stage1" and m.producer.config_sha256 and m.tokenizer.name == "qwen2.5"
    assert verify_manifest(out) == []
    st = m.stats
    # every dropped sample is countable by reason, and nothing vanished
    rejects = read_rejects(out / "rejects")
    assert sum(st["drop_reasons"].values()) == len(rejects) == st["records_dropped"]
    assert st["records_read"] == st["records_kept"] + st["records_dropped"] == m.totals.records + len(rejects)
    assert {"no_assistant_answer", "domain_out", "category_excluded", "contaminated", "invalid_json",
            "lang_not_zh"} <= set(st["drop_reasons"])
    rows = list(iter_rows(out))
    assert len(rows) == m.totals.records > 20
    assert pq.read_schema(out / m.shards[0].path).remove_metadata().equals(SFT_SCHEMA)
    r0 = rows[0]
    assert r0["n_tokens"] == sum(count_tokens(qwen_tokenizer, [x["content"] for x in r0["messages"]]))
    assert r0["metadata"]["lang.label"] == "zh" and "domain.p_in" in r0["metadata"]
    assert all(r["metadata"]["domain.label"] in ("finance", "law", "business", "politics") for r in rows
               if r["metadata"]["domain.decided_by"] == "classifier")


def test_infinity_categories_applied_in_the_run(demo_run):
    out, _, _ = demo_run
    rows = [r for r in iter_rows(out) if r["source"] == "infinity_instruct_sample"]
    assert any(r["metadata"]["domain.decided_by"] == "category_keep" for r in rows)
    excluded = [r for r in read_rejects(out / "rejects") if r["reason"] == "category_excluded"]
    assert excluded and all(r["source"] == "infinity_instruct_sample" for r in excluded)


def test_report_has_distributions_reasons_and_examples(demo_run):
    out, _, _ = demo_run
    md = (out / "report.md").read_text(encoding="utf-8")
    for section in ("## Drop reasons", "## Language", "## Domain", "## Examples of each drop reason",
                    "### contaminated", "### domain_out"):
        assert section in md
    assert (out / "report.html").read_text(encoding="utf-8").count("data:image/png;base64") >= 2


def test_rerun_is_a_noop_and_missing_inputs_fail_fast(demo_run, tmp_path):
    out, cfg, _ = demo_run
    before = (out / "manifest.json").stat().st_mtime_ns
    assert run_filters(cfg) == out
    assert (out / "manifest.json").stat().st_mtime_ns == before
    bad = _config(tmp_path, domain={"model": str(tmp_path / "missing.ftz")})
    with pytest.raises(UserError, match="domain model not found"):
        run_filters(bad)
    r = CliRunner().invoke(app, ["run", str(bad), "--set", "lang.mixed_policy=sometimes"])
    assert r.exit_code != 0 and isinstance(r.exception, UserError) and "mixed_policy" in str(r.exception)


def test_mixed_policy_override_changes_decisions(tmp_path, fixtures_dir):
    sg = tmp_path / "sg.jsonl"
    shutil.copy(fixtures_dir / "instructions" / "sharegpt_zh_1k.jsonl", sg)
    counts = {}
    for policy in ("keep", "drop"):
        cfg = _config(tmp_path / policy, inputs=[{"path": str(sg), "source": "sg"}],
                      domain={"enabled": False}, dedup={"enabled": False}, decontam={"enabled": False})
        out = run_filters(cfg, overrides=[f"lang.mixed_policy={policy}"])
        rows = list(iter_rows(out))
        mixed_kept = sum(bool(r["metadata"]["lang.mixed"]) for r in rows)
        counts[policy] = (len(rows), mixed_kept)
        if policy == "drop":
            assert mixed_kept == 0
            assert load_manifest(out).stats["drop_reasons"].get("lang_mixed", 0) > 0
    assert counts["keep"][1] > 0 and counts["keep"][0] > counts["drop"][0]
