"""The distillation configs hold the paper's values; the alpha/tau grid expands to one run per point."""
from pathlib import Path

import pytest

from corpora_manifests.errors import UserError
from training.config import grid_configs, load_train_config
from training.distill_capture import load_capture_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_distill_draft_has_the_paper_values():
    cfg, _ = load_train_config(CONFIGS / "distill_draft.yaml")
    s = cfg.stages[0]
    assert cfg.kind == "distill" and (s.distill.alpha, s.distill.temperature) == (0.5, 2.0)
    assert (s.global_batch_size, s.learning_rate, s.epochs) == (8, 3.5e-6, 1)
    cap, _ = load_capture_config(CONFIGS / "distill_capture.yaml")
    assert (cap.k, cap.encoding, cap.seq_len) == (64, "delta_q8", cfg.seq_len)
    for name in ("distill_teacher.yaml", "distill_student_sft.yaml", "distill_student_kd.yaml"):
        load_train_config(CONFIGS / "demo" / name)
    load_capture_config(CONFIGS / "demo" / "distill_capture.yaml")


def test_grid_is_one_run_per_point(tmp_path):
    cfg, _ = load_train_config(CONFIGS / "distill_draft.yaml")
    points = grid_configs(cfg, CONFIGS / "distill_grid_table3.yaml")
    got = {(p.stages[0].distill.alpha, p.stages[0].distill.temperature) for p in points}
    assert len(got) == len(points) >= 2 and (0.5, 2.0) in got
    assert len({p.output_dir for p in points}) == len(points)
    assert all(p.output_dir.startswith(cfg.output_dir + "/") for p in points)
    bad = tmp_path / "g.yaml"
    bad.write_text("- {name: x, alpha: 1.5, temperature: 2}\n")
    with pytest.raises(UserError, match="alpha"):
        grid_configs(cfg, bad)


def test_distill_settings_need_kind_distill():
    with pytest.raises(UserError, match="kind: distill"):
        load_train_config(CONFIGS / "train_sft_stage2.yaml", ["stages.0.distill={alpha: 0.5}"])


def test_pipeline_registers_the_capture_stage_and_trains_distill_configs(tmp_path):
    from soaes.pipeline.kinds import get_kind
    from training.config import TrainConfig

    kind = get_kind("distill_capture")
    cfg = kind.load({"name": "c", "output_dir": str(tmp_path / "c"), "teacher": "t", "manifests": ["m"]})
    assert cfg.k == 64 and kind.output_key == "output_dir"
    assert isinstance(get_kind("train").load({"name": "d", "kind": "distill", "output_dir": str(tmp_path / "d"),
                                              "model": {"tiny": {}}, "stages": [{"name": "s", "manifests": ["x"],
                                              "learning_rate": 1e-3, "global_batch_size": 1}]}), TrainConfig)


def test_toy_pipeline_wires_teacher_capture_and_both_students(tmp_path):
    # configs/demo/distill_toy.yaml: the standalone configs' paths equal the pipeline's <root>/<stage>
    from soaes.pipeline import load_pipeline
    from training.distill_capture import CaptureConfig
    from training.config import TrainConfig

    p = load_pipeline(CONFIGS / "demo" / "distill_toy.yaml", root=tmp_path)
    assert p.order.index("teacher") < p.order.index("logits") < p.order.index("student_kd")
    c = {n: p.contexts[n].config for n in p.order}
    assert isinstance(c["logits"], CaptureConfig) and c["logits"].teacher == str(tmp_path / "teacher" / "final")
    assert isinstance(c["student_kd"], TrainConfig) and c["student_kd"].kind == "distill"
    assert c["student_kd"].stages[0].manifests == [str(tmp_path / "logits")]
    sft, kd = c["student_sft"], c["student_kd"]
    assert sft.model == kd.model and sft.seq_len == kd.seq_len == c["logits"].seq_len
    assert [s.model_dump(exclude={"manifests", "distill", "split"}) for s in sft.stages] == \
        [s.model_dump(exclude={"manifests", "distill", "split"}) for s in kd.stages]
    default = load_pipeline(CONFIGS / "demo" / "distill_toy.yaml")
    for name, cfg_file in (("teacher", "distill_teacher.yaml"), ("student_sft", "distill_student_sft.yaml")):
        cfg, _ = load_train_config(CONFIGS / "demo" / cfg_file)
        assert cfg.output_dir == default.contexts[name].config.output_dir
    cap, _ = load_capture_config(CONFIGS / "demo" / "distill_capture.yaml")
    assert cap.teacher == default.contexts["logits"].config.teacher
    kd_alone, _ = load_train_config(CONFIGS / "demo" / "distill_student_kd.yaml")
    assert kd_alone.stages[0].manifests == [cap.output_dir] and cap.output_dir == default.contexts["logits"].config.output_dir
