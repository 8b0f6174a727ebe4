import json

import pytest
from typer.testing import CliRunner

from corpora_manifests.errors import UserError
from filters.cli import app
from filters.domain.model import DomainModel, sidecar_path
from filters.domain.train import binary_metrics, calibrate_threshold, evaluate, read_labelled

runner = CliRunner()


def test_tiny_model_learns_fixture_domains(tiny_model, labelled_fixture_data):
    _, eval_file = labelled_fixture_data
    side = json.loads(sidecar_path(tiny_model).read_text(encoding="utf-8"))
    assert side["labels"] == ["finance", "law", "other"]
    assert 0.05 <= side["threshold"] <= 0.95 and side["valid"]["metrics"]["n"] > 0
    m = DomainModel(tiny_model)
    res = evaluate(m, read_labelled(eval_file))
    assert res["binary_in"]["f1"] >= 0.8, res["binary_in"]
    assert set(res["per_class"]) == {"finance", "law", "other"}
    # confusion matrix rows sum to the gold counts
    assert sum(map(sum, res["confusion"]["matrix"])) == res["n"]


def test_eval_domain_cli_prints_binary_metrics_for_in_out_data(tiny_model, labelled_fixture_data, tmp_path):
    _, eval_file = labelled_fixture_data
    binary = tmp_path / "binary.jsonl"
    with binary.open("w", encoding="utf-8") as f:
        for text, label in read_labelled(eval_file):
            f.write(json.dumps({"text": text, "label": "out" if label == "other" else "in"}, ensure_ascii=False) + "\n")
    r = runner.invoke(app, ["eval-domain", "--model", str(tiny_model), "--data", str(binary)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"accuracy", "macro_f1", "per_class", "confusion", "binary_in"} <= set(out)
    assert set(out["per_class"]) == {"in", "out"}
    assert out["binary_in"]["f1"] == out["per_class"]["in"]["f1"]


def test_train_domain_cli_binary_labels(labelled_fixture_data, tmp_path):
    train_file, _ = labelled_fixture_data
    binary = tmp_path / "b.jsonl"
    with binary.open("w", encoding="utf-8") as f:
        for text, label in read_labelled(train_file):
            f.write(json.dumps({"text": text, "label": "out" if label == "other" else "in"}, ensure_ascii=False) + "\n")
    out_model = tmp_path / "m.bin"
    r = runner.invoke(app, ["train-domain", "--train", str(binary), "--output", str(out_model), "--epoch", "5",
                            "--dim", "8", "--bucket", "20000"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["labels"] == ["in", "out"] and out_model.exists() and out_model.stat().st_size < 1_000_000
    r = runner.invoke(app, ["predict", "--model", str(out_model), "tests/fixtures/filters/malformed.jsonl"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(l) for l in r.output.splitlines()]
    assert {l["id"] for l in lines if "p_in" in l} == {"good-1", "good-2"}
    assert any(l.get("error") == "invalid_json" for l in lines)


def test_missing_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="domain model not found"):
        DomainModel(tmp_path / "nope.ftz")


def test_calibration_picks_threshold_maximising_f1():
    gold = [True] * 5 + [False] * 5
    p = [0.9, 0.8, 0.7, 0.45, 0.42, 0.3, 0.2, 0.1, 0.05, 0.4]
    t, f1 = calibrate_threshold(gold, p)
    assert binary_metrics(gold, [x >= t for x in p])["f1"] == f1 == 1.0
    assert 0.4 < t <= 0.42
