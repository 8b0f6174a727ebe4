"""Splits by document (80/10/10, stratified by task type) and the `soaes synth run` acceptance run."""
import json
from collections import Counter

from corpora_manifests.models import load_manifest
from corpora_manifests.shards import iter_rows, verify_manifest
from synthesis.splits import assign_splits, check_disjoint

FR = {"train": 0.8, "dev": 0.1, "test": 0.1}


def _groups(n_qa=300, n_report=40):
    g = {f"doc{i}": Counter(qa=1 + i % 7) for i in range(n_qa)}
    g.update({f"rep{i}": Counter(qa=2, report=1) for i in range(n_report)})
    return g


def test_assignment_is_stratified_deterministic_and_stable():
    groups = _groups()
    a = assign_splits(groups, FR, seed=1)
    assert a == assign_splits(groups, FR, seed=1)
    assert a != assign_splits(groups, FR, seed=2)
    for stratum in ("qa", "report"):
        items = Counter()
        for g, (split, st) in a.items():
            if st == stratum:
                items[split] += sum(groups[g].values())
        total = sum(items.values())
        for split, f in FR.items():
            assert abs(items[split] / total - f) < 0.03, (stratum, items)
    # more documents arrive: every earlier assignment is kept, only new groups are placed
    more = dict(groups, **{f"new{i}": Counter(qa=3) for i in range(50)})
    b = assign_splits(more, FR, seed=1, existing=a)
    assert all(b[g] == a[g] for g in a)
    assert check_disjoint([("x", "train"), ("x", "test"), ("y", "dev")]) == {"x": {"train", "test"}}


def test_synth_run_rules_on_fixtures_gives_leak_free_shards(demo_run):
    out, output = demo_run
    assert "sft_stage2" in output and "eval" in output  # the run summary names both outputs
    sft, ev = load_manifest(out / "sft_stage2"), load_manifest(out / "eval")
    assert sft.stage == "sft_stage2" and set(sft.splits) == {"train"}
    assert ev.stage == "eval" and set(ev.splits) == {"dev", "test"}
    assert verify_manifest(out / "sft_stage2") == [] and verify_manifest(out / "eval") == []
    assert sft.producer.config_sha256 and sft.tokenizer.name == "qwen2.5"
    rows = {"train": list(iter_rows(out / "sft_stage2"))}
    rows["dev"] = list(iter_rows(out / "eval", split="dev"))
    rows["test"] = list(iter_rows(out / "eval", split="test"))
    # no document (and no version group of a law) in two splits
    docs = [(r["metadata"]["synth.doc_id"], s) for s, rs in rows.items() for r in rs]
    groups = [(r["metadata"]["synth.doc_group"], s) for s, rs in rows.items() for r in rs]
    assert check_disjoint(docs) == {} and check_disjoint(groups) == {}
    total = sum(len(v) for v in rows.values())
    for split, f in FR.items():
        assert abs(len(rows[split]) / total - f) < 0.05
    for split in FR:  # stratified: report tasks in every split
        assert any(r["metadata"]["synth.task_type"] == "report" for r in rows[split])
    r = rows["train"][0]
    assert r["metadata"]["synth.origin"] == "rules" and r["source"] == "rules"
    assert r["messages"][0]["role"] == "user" and r["messages"][1]["role"] == "assistant"
    assert r["n_tokens"] > 0 and "规定" in r["messages"][0]["content"]
    assert (out / "report.html").exists() and json.loads((out / "stats.json").read_text())["rejects"]


def test_rerun_is_a_noop(demo_run, tmp_path, in_repo):
    import shutil

    from synthesis.pipeline import run_synthesis

    out = tmp_path / "run"
    shutil.copytree(demo_run[0], out)  # a moved run directory is still the same finished run
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix in (".json", ".parquet")}
    run_synthesis("configs/demo/synth_stage2.yaml", [f"output_dir={out}"], progress=False)
    assert all(p.read_bytes() == b for p, b in before.items())


def test_expert_items_merge_and_split_assignments_persist(tmp_path, in_repo):
    from synthesis.pipeline import run_synthesis

    from .conftest import SYNTH_FIXTURES

    out = tmp_path / "run"
    base = [f"output_dir={out}", "source.limit=12"]
    run_synthesis("configs/demo/synth_stage2.yaml", base, progress=False)
    first = {r["id"]: r["metadata"]["synth.split"]
             for stage in ("sft_stage2", "eval") for r in iter_rows(out / stage)}
    ov = base + [f"expert=[{{path: {SYNTH_FIXTURES / 'expert_qa.jsonl'}}}, {{path: {SYNTH_FIXTURES / 'expert_qa.csv'}}}]"]
    run_synthesis("configs/demo/synth_stage2.yaml", ov, force=True, progress=False)  # a changed config needs --force
    sft, ev = load_manifest(out / "sft_stage2"), load_manifest(out / "eval")
    rows = list(iter_rows(out / "sft_stage2")) + list(iter_rows(out / "eval"))
    expert = [r for r in rows if r["metadata"]["synth.origin"] == "expert"]
    assert len(expert) == 6 and sft.stats["synthesis"]["expert_items"] == 6
    assert {r["metadata"]["synth.task_type"] for r in expert} == {"qa", "report"}
    assert {r["source"] for r in expert} == {"expert"}
    # the four expert items about one document stay in one split
    splits = {r["metadata"]["synth.split"] for r in expert if r["metadata"]["synth.doc_id"] == "expert:qiye_guoyou_zichan_fa"}
    assert len(splits) == 1
    rej = sft.stats["rejects"]
    assert rej["expert_missing_question_or_answer"] == 1 and rej["expert_bad_task_type"] == 1 and rej["bad_json_line"] == 1
    assert sft.totals.records + ev.totals.records == len(rows) == len(first) + 6
    # documents placed by the first build keep their split when new items arrive
    now = {r["id"]: r["metadata"]["synth.split"] for r in rows}
    assert all(now[i] == s for i, s in first.items())


def test_max_chunks_generates_from_a_stable_nested_sample(tmp_path, in_repo):
    from synthesis.pipeline import run_synthesis

    chosen = {}
    for cap in (5, 9):
        out = tmp_path / f"cap{cap}"
        run_synthesis("configs/demo/synth_stage2.yaml", [f"output_dir={out}", "source.limit=12",
                                                          f"chunking.max_chunks={cap}"], progress=False)
        st = load_manifest(out / "sft_stage2").stats["synthesis"]
        assert st["chunks"] == cap < st["chunks_total"]
        rows = list(iter_rows(out / "sft_stage2")) + list(iter_rows(out / "eval"))
        chosen[cap] = {r["metadata"]["synth.chunk_id"] for r in rows}
        assert 0 < len(chosen[cap]) <= cap
    assert chosen[5] <= chosen[9]  # a larger cap keeps the smaller one's chunks
