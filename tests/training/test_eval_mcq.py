import csv
import json
from pathlib import Path

import pytest

from tests.training.eval_models import save_forced_answer, save_tiny

MCQ = Path(__file__).resolve().parents[1] / "fixtures" / "eval" / "mcq_law"


def _answers():
    out = {}
    for p in sorted((MCQ / "test").glob("*.csv")):
        out[p.stem] = [r["Answer"] for r in csv.DictReader(open(p, encoding="utf-8")) if r["Answer"] in list("ABCD")]
    return out


@pytest.fixture(scope="module")
def forced(tmp_path_factory):
    root = tmp_path_factory.mktemp("mcq_models")
    return {L: save_forced_answer(root / L, L) for L in "AB"}


def test_forced_answer_models_score_the_share_of_their_letter(forced, tmp_path):
    answers = _answers()
    total = sum(len(v) for v in answers.values())
    out = tmp_path / "mcq"
    from typer.testing import CliRunner

    from soaes.cli import app

    r = CliRunner().invoke(app, ["eval", "mcq", "--model", str(forced["A"]), "--data", str(MCQ),
                                 "--baseline", str(forced["B"]), "-o", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "mcq.json").read_text(encoding="utf-8"))
    base = json.loads((out / "baseline.json").read_text(encoding="utf-8"))
    assert res["engine"] == "lm-eval"
    assert res["rejected"] == {"answer_not_a_to_d": 1}  # the multiple-answer row, reported not dropped
    for shots in ("0-shot", "5-shot"):
        for letter, run in (("A", res), ("B", base)):
            want = {s: 100 * a.count(letter) / len(a) for s, a in answers.items()}
            got = run["results"][shots]
            assert {s: v["accuracy"] for s, v in got["subjects"].items()} == pytest.approx(want, abs=1e-3)
            assert got["overall"] == pytest.approx(100 * sum(a.count(letter) for a in answers.values()) / total, abs=1e-3)
        assert res["retention"][shots] == pytest.approx(100 * res["results"][shots]["overall"] / base["results"][shots]["overall"], abs=0.01)
    assert "retention" in r.stdout and "overall (micro)" in r.stdout


def test_native_engine_matches_lm_eval_on_a_random_model(tmp_path):
    """The fallback re-implementation scores exactly what the harness scores, question by question."""
    from training.eval_generate import load_model_and_tokenizer
    from training.eval_mcq import build_context, load_subjects, run_lm_eval, run_native

    model, tok = load_model_and_tokenizer(save_tiny(tmp_path / "rand", seed=3))
    subjects = load_subjects(MCQ)
    subjects = {k: v for k, v in subjects.items() if k == "lbk"}
    for shots in (0, 2):
        assert run_native(model, tok, subjects, shots) == run_lm_eval(model, tok, subjects, shots)
    ctx = build_context(subjects["lbk"], subjects["lbk"].test[0], 1)
    assert ctx.startswith(subjects["lbk"].description) and ctx.count("答案：") == 2 and ctx.endswith("\n答案：")


def test_ceval_layout_and_bad_input(tmp_path):
    from corpora_manifests.errors import UserError
    from training.eval_mcq import load_subjects

    (tmp_path / "val").mkdir()
    (tmp_path / "dev").mkdir()
    rows = list(csv.DictReader(open(MCQ / "test" / "lbk.csv", encoding="utf-8")))
    for split in ("val", "dev"):
        with open(tmp_path / split / f"law_{split}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "question", "A", "B", "C", "D", "answer", "explanation"])
            for i, r in enumerate(rows):
                w.writerow([i, r["Question"], r["A"], r["B"], r["C"], "" if i == 0 else r["D"], r["Answer"], ""])
    subs = load_subjects(tmp_path)
    assert list(subs) == ["law"] and len(subs["law"].test) == len(rows) - 1 and len(subs["law"].dev) == len(rows) - 1
    assert [r["reason"] for r in subs["law"].rejected] == ["empty_option", "empty_option"]
    assert subs["law"].description.startswith("以下是中国关于法学")  # lm-eval's own C-Eval description
    with pytest.raises(UserError):
        load_subjects(tmp_path / "missing")
