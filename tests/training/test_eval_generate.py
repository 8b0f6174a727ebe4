import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.eval_models import save_tiny

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "training" / "sft_stage2"


def soaes(*args):
    return subprocess.run([sys.executable, "-m", "soaes.cli", *map(str, args)], capture_output=True, text=True)


def soaes_in_process(*args):
    """The same command line, in this process (no second torch import on a shared 2-core machine)."""
    from typer.testing import CliRunner

    from soaes.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_models")
    return save_tiny(root / "a" / "model", seed=0), save_tiny(root / "b" / "model", seed=1)


def _read(path):
    return [json.loads(l) for l in open(path, encoding="utf-8")]


def test_generate_batched_left_padding_equals_one_by_one_and_resumes(models, tmp_path):
    from training.eval_generate import GenSettings, generate_predictions, load_prompts

    prompts, _ = load_prompts(DATA, "validation")
    settings = GenSettings(max_new_tokens=6)
    one = generate_predictions(models[0], DATA, tmp_path / "one", settings, split="validation", batch_size=1)
    batched = generate_predictions(models[0], DATA, tmp_path / "batched", settings, split="validation", batch_size=4)
    assert one["generated"] == batched["generated"] == len(prompts) == 5
    by_id = lambda rows: {r["id"]: r for r in rows}  # noqa: E731
    a, b = by_id(_read(tmp_path / "one" / "predictions.jsonl")), by_id(_read(tmp_path / "batched" / "predictions.jsonl"))
    assert set(a) == {p.id for p in prompts}
    # Left padding must not change a greedy answer: a right-padded batch would.
    assert {k: v["prediction"] for k, v in a.items()} == {k: v["prediction"] for k, v in b.items()}
    assert all(r["reference"] for r in a.values()) and all(0 < r["n_new_tokens"] <= 6 for r in a.values())

    # Crash simulation: keep 2 whole records and a torn third line, then resume.
    pred = tmp_path / "batched" / "predictions.jsonl"
    lines = pred.read_bytes().splitlines(keepends=True)
    pred.write_bytes(b"".join(lines[:2]) + lines[2][:10])
    again = generate_predictions(models[0], DATA, tmp_path / "batched", settings, split="validation", batch_size=4)
    assert again["skipped_existing"] == 2 and again["generated"] == 3
    resumed = _read(pred)
    assert len(resumed) == 5 and by_id(resumed).keys() == a.keys()
    assert {r["id"]: r["prediction"] for r in resumed} == {k: v["prediction"] for k, v in a.items()}


def test_cli_refuses_changed_settings_and_scores_and_compares(models, tmp_path):
    runs = []
    for i, m in enumerate(models):
        out = tmp_path / f"run{i}"
        r = soaes_in_process("eval", "generate", "--model", m, "--data", DATA, "--split", "validation", "-o", out,
                  "--max-new-tokens", 4, "--label", f"model-{i}")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout.strip().splitlines()[-1])["generated"] == 5
        runs.append(out)
    r = soaes("eval", "generate", "--model", models[0], "--data", DATA, "--split", "validation", "-o", runs[0],
              "--max-new-tokens", 4, "--top-p", 0.7)
    assert r.returncode == 2 and "other settings" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    for cmd in ("score", "metrics"):  # metrics is kept as an alias
        r = soaes_in_process("eval", cmd, runs[0])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["n"] == 5
    # A perfect run: references as predictions, so the table must put it first with 100s.
    perfect = tmp_path / "perfect.jsonl"
    perfect.write_text("".join(json.dumps({"id": x["id"], "prediction": x["reference"], "reference": x["reference"]},
                                          ensure_ascii=False) + "\n" for x in _read(runs[0] / "predictions.jsonl")),
                       encoding="utf-8")
    r = soaes_in_process("eval", "compare", *runs, perfect, "-o", tmp_path / "cmp")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "cmp" / "compare.json").read_text(encoding="utf-8"))
    assert [row["label"] for row in res["rows"]] == ["model-0", "model-1", "perfect"]
    assert res["rows"][2]["rouge-1"] == 100.0 and res["rows"][0]["rouge-1"] < 100.0
    md = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert "| Model / stage | ROUGE-1 | ROUGE-2 | ROUGE-L | BLEU-4 | n |" in md and "jieba" in md and "| perfect | **100.00**" in md
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
