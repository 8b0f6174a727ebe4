import json
import subprocess
import sys

from training.eval_metrics import Pair, compute_metrics, load_pairs


def test_identical_answers_score_100_and_different_score_lower(fixtures_dir):
    rows = [json.loads(l) for l in open(fixtures_dir / "eval" / "disc_law_eval_sample.jsonl", encoding="utf-8")]
    refs = [r.get("reference") or r.get("answer") for r in rows]
    refs = [r for r in refs if r][:10]
    assert refs, "fixture must hold references"
    same = compute_metrics([Pair(str(i), r, r) for i, r in enumerate(refs)])
    assert same["rouge-1"] == 100.0 and same["rouge-l"] == 100.0 and same["bleu-4"] > 99.9
    shifted = compute_metrics([Pair(str(i), refs[(i + 1) % len(refs)], r) for i, r in enumerate(refs)])
    assert shifted["rouge-1"] < 60 and shifted["bleu-4"] < 30


def test_partial_overlap_known_values():
    m = compute_metrics([Pair("a", "国有资产属于国家所有即全民所有", "企业国有资产属于国家所有，即全民所有。")])
    assert 70 < m["rouge-1"] < 85 and 40 < m["rouge-2"] < 65


def test_cli_rejects_bad_lines_and_scores_the_rest(tmp_path):
    p = tmp_path / "preds.jsonl"
    with p.open("wb") as f:
        f.write(json.dumps({"predict": "公司是企业法人", "label": "公司是企业法人，有独立的法人财产"}, ensure_ascii=False).encode() + b"\n")
        f.write(b"{not json\n")
        f.write(json.dumps({"label": "only a reference"}).encode() + b"\n")
    out = subprocess.run([sys.executable, "-m", "soaes.cli", "eval", "metrics", str(p)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["n"] == 1 and res["rejected"] == {"unreadable_record": 1, "no_prediction": 1}
    missing = subprocess.run([sys.executable, "-m", "soaes.cli", "eval", "metrics", str(tmp_path / "nope.jsonl")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("error: predictions file not found")
