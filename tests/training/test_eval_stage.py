import json
from pathlib import Path

import yaml

from tests.training.eval_models import save_tiny

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "training" / "sft_stage2"


def test_pipeline_eval_stage_compares_models_into_the_report_and_reruns_as_no_op(tmp_path):
    from soaes.pipeline import load_pipeline, pipeline_status, run_pipeline
    from soaes.pipeline.report import write_pipeline_report

    a, b = save_tiny(tmp_path / "a", seed=0), save_tiny(tmp_path / "b", seed=1)
    pfile = tmp_path / "pipeline.yaml"
    pfile.write_text(yaml.safe_dump({"name": "evaltest", "root": str(tmp_path / "run"), "stages": [
        {"name": "eval", "kind": "eval", "set": {"data": str(DATA), "split": "validation", "max_new_tokens": 4,
                                                 "models": {"base-a": str(a), "base-b": str(b)}}}]}))
    p = load_pipeline(pfile)
    run_pipeline(p)
    out = tmp_path / "run" / "eval"
    res = json.loads((out / "compare" / "compare.json").read_text(encoding="utf-8"))
    assert [r["label"] for r in res["rows"]] == ["base-a", "base-b"] and all(r["n"] == 5 for r in res["rows"])
    assert pipeline_status(load_pipeline(pfile))["eval"].state == "done"
    html = write_pipeline_report(load_pipeline(pfile)).read_text(encoding="utf-8")
    assert "Table 2" in html and "base-b" in html and "jieba" in html
