"""`soaes pipeline`: configs/soaesv2.yaml itself runs through every stage on the fixtures (only
--set overrides: inputs → fixtures, models → tiny Qwen2s, sizes → tiny), stops at the review gate,
reruns as a no-op and marks exactly the stages a changed key affects as stale. Phase 3 included:
the tiny SFT model is the teacher whose logits are captured, a tinier draft is distilled from them
and the eval stage benchmarks it as the SFT model's speculative draft."""
import json
import os
from pathlib import Path

import pytest

from corpora_manifests.errors import UserError
from corpora_manifests.models import load_manifest
from corpora_manifests.shards import verify_manifest
from soaes.pipeline import load_pipeline, pipeline_status, run_pipeline
from tests.conftest import REPO

PAPER = REPO / "configs" / "soaesv2.yaml"
TINY = "{hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1}"
TINY_DRAFT = "{hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1}"
FIX = "tests/fixtures"

# Only what a user on a laptop would override: inputs (fixtures), the base model (tiny) and sizes.
SETS = [
    f"cpt.inputs=[{FIX}/laws/laws_sample.jsonl]", "cpt.executor.tasks=1", "cpt.executor.workers=1",
    "cpt.source=fixtures", "cpt.dedup.keep=newest", "cpt.dedup.date_key=version_date",
    "synth.generator=rules", "synth.source.limit=12",          # offline generator, a few documents
    f"sft_stage1.inputs=[{{path: {FIX}/instructions/disc_fin_sft_samples.jsonl, source: disc_fin}},"
    f" {{path: {FIX}/instructions/sharegpt_zh_1k.jsonl, source: sharegpt_zh}}]",
    f"sft_stage1.decontam.eval_sets.1.path={FIX}/eval/lawbench_sample.jsonl",
    f"sft_stage1.decontam.eval_sets.2.path={FIX}/eval/disc_law_eval_sample.jsonl",
    f"sft_stage1.decontam.eval_sets.3.path={FIX}/eval/disc_law_eval_sample.jsonl",  # no disc_fin_eval fixture
    "sft_stage1.executor.tasks=1", "sft_stage1.executor.workers=1",
    "train_cpt.model.path=null", f"train_cpt.model.tiny={TINY}",
    "train_draft.model.path=null", f"train_draft.model.tiny={TINY_DRAFT}", "train_draft.logging_steps=1",
    # the capture's cost is the LM head over 152 k ids at every assistant position: samples of up to
    # 80 tokens only (a fifth of stage 2's); the draft trains at the same seq_len, as the configs pair them
    "logits.seq_len=80", "logits.batch_tokens=2048", "train_draft.seq_len=80",
    "train_cpt.seq_len=128", "train_sft.seq_len=128",
]
for run in ("train_cpt", "train_sft", "train_draft"):
    # CPU, seconds: no DeepSpeed CPU-Adam JIT build, short sequences, a couple of steps per stage
    SETS += [f"{run}.deepspeed.enabled=false", f"{run}.gradient_checkpointing=false", f"{run}.save_steps=2"]
SETS += ["train_cpt.stages.0.global_batch_size=1", "train_cpt.stages.0.max_steps=2"]
SETS += [f"train_sft.stages.{i}.{k}" for i in (0, 1) for k in ("global_batch_size=1", "max_steps=2")]
SETS += ["train_draft.stages.0.global_batch_size=1", "train_draft.stages.0.max_steps=2"]
SETS += ["eval.max_new_tokens=4", "eval.specbench.n=[2]", "eval.specbench.modes=[greedy]",
         "eval.specbench.max_new_tokens=4", "eval.specbench.limit=2"]


def _load(root, extra=()):
    return load_pipeline(PAPER, SETS + list(extra), root=root)


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("soaesv2") / "run"
    prev = Path.cwd()
    os.chdir(REPO)  # fixture paths are relative to the repository, as a user's data/ would be to theirs
    try:
        p = _load(root)
        first = run_pipeline(p)
        # the paper run stops at the review gate (nobody has reviewed anything yet); what does not
        # need the reviewed data (CPT training) goes on
        acts = {o.name: (o.action, o.detail) for o in first}
        assert acts["review"][0] == "waiting" and "soaes review export" in acts["review"][1]
        assert {acts[n][0] for n in ("sft_stage1", "train_sft", "logits", "train_draft", "eval")} == {"blocked"}
        assert acts["train_cpt"][0] == "ran"
        assert pipeline_status(p)["review"].state == "waiting"
        from synthesis.store import ReviewStore

        with ReviewStore(p.contexts["synth"].config.store_path) as store, store.batch():
            for s in store.list_pending():  # an annotator accepts every pair (the review app's call)
                store.record_decision(s.item.item_id, "accept", "annotator-1", channel="test")
        second = run_pipeline(p)
        yield p, first, second
    finally:
        os.chdir(prev)


def test_paper_config_chains_through_every_stage(paper_run):
    p, _, second = paper_run
    assert [o.name for o in second if o.action == "ran"] == ["review", "sft_stage1", "train_sft", "logits",
                                                              "train_draft", "eval"]
    root = p.root
    cpt, synth_train, synth_eval, stage1 = (root / "cpt", root / "synth" / "sft_stage2", root / "synth" / "eval",
                                            root / "sft_stage1")
    for d in (cpt, synth_train, synth_eval, stage1):
        m = load_manifest(d)
        assert verify_manifest(d, m) == [] and m.totals.records > 0
    # each stage consumed the previous stage's manifest, not a path of its own config file
    assert load_manifest(synth_train).sources[0].uri == str((Path(REPO) / cpt).resolve()) or \
        Path(load_manifest(synth_train).sources[0].uri).resolve() == cpt.resolve()
    s1 = load_manifest(stage1)
    assert s1.producer.config["decontam"]["eval_sets"][0]["path"] == str(synth_eval)
    sft_run = json.loads((root / "train_sft" / "run.json").read_text())
    consumed = {Path(m["path"] if isinstance(m, dict) else m).resolve() for m in sft_run["consumed_manifests"]}
    assert {stage1.resolve(), synth_train.resolve()} <= consumed | {c.parent for c in consumed}
    assert (root / "train_sft" / "final").resolve().is_dir()
    assert sft_run["producer"]["config"]["model"]["path"] == str(root / "train_cpt" / "final")
    # approvals are the annotator's, recorded in every SFT stage-2 row
    from corpora_manifests.shards import iter_rows

    assert {tuple(r["metadata"]["review.annotators"]) for r in iter_rows(synth_train)} == {("annotator-1",)}


def test_report_covers_every_stage_of_the_paper_run(paper_run):
    # `soaes pipeline run` ends with this report (the demo's, without the demo banner)
    from soaes.pipeline.report import write_pipeline_report

    p, _, _ = paper_run
    html = write_pipeline_report(p).read_text(encoding="utf-8")
    for name in p.order:
        assert f"<h2 id='{name}'>" in html
    assert "Demo run" not in html and "train_draft/run.json" in html and "logits" in html


def test_phase3_captures_the_sft_model_distils_the_draft_and_benchmarks_it(paper_run):
    from training.distill_capture import teacher_identity

    p, _, _ = paper_run
    root = p.root
    teacher, stage1, synth_train = root / "train_sft" / "final", root / "sft_stage1", root / "synth" / "sft_stage2"
    # the capture pins the trained SFT model (its weights as they are now) and the SFT manifests it read
    logits = load_manifest(root / "logits")
    assert logits.stage == "distill_logits" and verify_manifest(root / "logits", logits) == []
    d = logits.stats["distill"]
    assert d["teacher"]["path"] == str(teacher.resolve())
    assert d["teacher"]["weights_sha256"] == teacher_identity(teacher)["weights_sha256"]
    assert {Path(m["path"]).resolve() for m in d["source_manifests"]} == {stage1.resolve(), synth_train.resolve()}
    assert (d["k"], d["encoding"]) == (64, "delta_q8") and d["positions"] == sum(s.tokens for s in logits.shards) > 0
    # the draft: a tiny base distilled offline from those logits with the paper's loss settings
    run = json.loads((root / "train_draft" / "run.json").read_text())
    st = run["stages"][0]
    assert run["kind"] == "distill" and st["distill"]["mode"] == "offline"
    kd = p.contexts["train_draft"].config.stages[0].distill  # configs/distill_draft.yaml's loss settings
    assert (st["distill"]["alpha"], st["distill"]["temperature"]) == (kd.alpha, kd.temperature) == (0.5, 2.0)
    assert st["distill"]["tail"] == kd.tail
    if kd.tail == "sampled":  # its tail draws were captured at the draft's own τ
        assert d["tail"]["tau"] == kd.temperature and d["tail"]["samples"] > 0
    assert st["distill"]["k"] == [64] and st["distill"]["encoding"] == ["delta_q8"]
    assert (root / "logits").resolve() in {Path(m["path"]).resolve() for m in run["consumed_manifests"]}
    hist = json.loads((Path(st["model_dir"]).parent / "stage.json").read_text())["log_history"]
    assert any("kd_kl" in h and h["kd_kl"] >= 0 for h in hist)
    # eval: the SFT model as target, the distilled draft as its assistant, acceptance measured
    sb = json.loads((root / "eval" / "specbench" / "specbench.json").read_text())
    assert (sb["target"], sb["draft"]) == (str(teacher.resolve()), str((root / "train_draft" / "final").resolve()))
    rows = {(r["method"], r["n"]): r for r in sb["rows"]}
    assert set(rows) == {("target", None), ("draft", 2), ("prompt-lookup", 2), ("self-draft", 2)}
    draft = rows[("draft", 2)]
    assert draft["prompts"] == 2 and draft["drafted"] > 0 and 0 <= draft["acceptance_rate"] <= 1
    assert rows[("self-draft", 2)]["acceptance_rate"] == 1.0  # the figures' own sanity check
    assert (root / "eval" / "specbench" / "specbench.md").is_file()


def test_rerun_is_up_to_date_and_recomputes_nothing(paper_run):
    p, _, _ = paper_run
    # SQLite's -shm/-wal sidecars change whenever the review store is opened, even to read it
    # (the pipeline report does): they are the database's scratch space, not a stage's output
    files = [f for f in p.root.rglob("*") if f.is_file() and ".pipeline" not in f.parts and f.name != "pipeline.log"
             and not f.name.endswith(("-shm", "-wal"))]
    before = {f: f.stat().st_mtime_ns for f in files}
    again = run_pipeline(_load(p.root))
    assert [(o.name, o.action) for o in again] == [(n, "up to date") for n in p.order]
    assert {f: f.stat().st_mtime_ns for f in files if f.exists()} == before


def test_changed_key_makes_exactly_that_stage_and_its_dependants_stale(paper_run):
    p, _, _ = paper_run
    changed = _load(p.root, ["synth.chunking.min_chars=50"])
    st = pipeline_status(changed)
    assert {n for n, s in st.items() if s.state == "done"} == {"cpt", "train_cpt"}
    assert st["synth"].state == "stale" and st["synth"].changed == ["chunking.min_chars"]
    assert {st[n].state for n in ("review", "sft_stage1", "train_sft", "eval")} <= {"stale", "pending"}
    with pytest.raises(UserError, match=r"chunking\.min_chars.*--force synth"):
        run_pipeline(changed)
    # a training key: that training run and what consumes its model (the capture, the draft, eval)
    st = pipeline_status(_load(p.root, ["train_sft.stages.1.learning_rate=1e-4"]))
    assert {n for n, s in st.items() if s.state != "done"} == {"train_sft", "logits", "train_draft", "eval"}
    assert st["train_sft"].changed == ["stages.1.learning_rate"]
    # a capture key: the capture, the draft distilled from it and eval
    st = pipeline_status(_load(p.root, ["logits.k=32"]))
    assert {n for n, s in st.items() if s.state != "done"} == {"logits", "train_draft", "eval"}
    assert st["logits"].changed == ["k"]


def test_paper_config_pairs_the_capture_with_the_draft_and_eval(tmp_path):
    # as written (no overrides): the capture reads the SFT model and data, the draft trains on the
    # capture at its seq_len and τ, eval benchmarks that draft against the model it was distilled from
    p = load_pipeline(PAPER, [], root=tmp_path)
    cap, draft, ev = (p.contexts[n].config for n in ("logits", "train_draft", "eval"))
    assert cap.teacher == str(tmp_path / "train_sft" / "final")
    assert cap.manifests == [str(tmp_path / "sft_stage1"), str(tmp_path / "synth" / "sft_stage2")]
    assert draft.kind == "distill" and draft.stages[0].manifests == [str(tmp_path / "logits")]
    assert cap.seq_len == draft.seq_len and cap.tail_tau == draft.stages[0].distill.temperature
    assert draft.model.path and "Qwen2.5" in draft.model.path and draft.model.path != \
        p.contexts["train_cpt"].config.model.path
    assert (ev.specbench.target, ev.specbench.draft) == (cap.teacher, str(tmp_path / "train_draft" / "final"))
    assert p.order.index("train_sft") < p.order.index("logits") < p.order.index("train_draft") < p.order.index("eval")


def test_unknown_stage_and_bad_set_fail_with_one_line(tmp_path):
    with pytest.raises(UserError, match="expected STAGE.key=value"):
        load_pipeline(PAPER, ["nosuchstage.x=1"], root=tmp_path)
    with pytest.raises(UserError, match="has no config; settable: review.auto_approve"):
        load_pipeline(PAPER, ["review.required=false"], root=tmp_path)
    with pytest.raises(UserError, match="no stage 'nope'"):
        run_pipeline(load_pipeline(PAPER, [], root=tmp_path), until="nope")


def test_deleted_final_weights_resume_from_the_kept_checkpoint(paper_run):
    # runs last in this module: it redoes train_cpt in the shared run
    p, _, _ = paper_run
    model = p.root / "train_cpt" / "stages" / "01-cpt" / "model"
    for f in model.glob("*.safetensors"):
        f.unlink()
    st = pipeline_status(_load(p.root))["train_cpt"]
    assert st.state == "stale" and "no final weights" in st.detail  # finished is checked on the outputs
    again = run_pipeline(_load(p.root), until="train_cpt")
    assert [(o.name, o.action) for o in again] == [("cpt", "up to date"), ("train_cpt", "ran")]
    stage = json.loads((model.parent / "stage.json").read_text())
    assert stage["resumed_from"] and stage["resumed_from"].endswith("checkpoint-2")
    assert any(model.glob("*.safetensors")) and pipeline_status(_load(p.root))["train_cpt"].state == "done"
