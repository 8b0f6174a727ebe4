"""Leave-one-family-out machinery, format views, and the shipped model measured on fixtures now."""
import json
import re

import pytest

from filters.domain.augment import clauses, views
from filters.domain.baselines import keyword_classifier
from filters.domain.families import in_valid
from filters.domain.lofo import bootstrap_prf, macro_family_threshold, markdown_table, run_lofo
from filters.domain.train import binary_metrics
from filters.text import domain_text


def _jsonl(p):
    return [json.loads(l) for l in p.open(encoding="utf-8")]


def fixture_families(fx) -> list[dict]:
    """Committed fixture records grouped into three families (each with in- and out-of-domain)."""
    recs = []
    for r in _jsonl(fx / "eval" / "lawbench_sample.jsonl"):
        recs.append({"id": r["id"], "text": r["question"], "label": "law", "source": "lawbench", "family": "exam"})
    for r in _jsonl(fx / "instructions" / "belle_eval_set.jsonl"):
        recs.append({"id": r["id"], "text": r["instruction"], "label": "other", "source": "belle_eval", "family": "exam"})
    for r in _jsonl(fx / "instructions" / "disc_fin_sft_samples.jsonl"):
        recs.append({"id": r["id"], "text": r["instruction"], "label": "finance", "source": "disc_fin",
                     "family": "instructions"})
    for r in _jsonl(fx / "instructions" / "medical_sft_1k_ood.jsonl"):
        recs.append({"id": r["id"], "text": r["messages"][0]["value"], "label": "other", "source": "medical",
                     "family": "instructions"})
    for law in _jsonl(fx / "laws" / "laws_sample.jsonl")[:80]:
        body = law["text"].split("<!-- INFO END -->", 1)[-1]
        for j, a in enumerate([a for a in re.split(r"\n\s*\n", body) if a.startswith("第") and len(a) > 30][:2]):
            recs.append({"id": f"{law['id']}#{j}", "text": a[:300], "label": "law", "source": "laws", "family": "statutes"})
    for r in _jsonl(fx / "instructions" / "belle_seed_tasks.jsonl"):
        recs.append({"id": r["id"], "text": r["instruction"], "label": "other", "source": "belle_seed",
                     "family": "statutes"})
    return recs


def test_bootstrap_point_equals_metrics_and_ci_brackets_it():
    gold = [True] * 60 + [False] * 40
    pred = [i % 4 != 0 for i in range(60)] + [i % 5 == 0 for i in range(40)]
    m = bootstrap_prf(gold, pred, n_boot=500)
    ref = binary_metrics(gold, pred)
    assert (m["precision"], m["recall"], m["f1"]) == (ref["precision"], ref["recall"], ref["f1"])
    for k in ("precision", "recall", "f1"):
        lo, hi = m[k + "_ci"]
        assert lo <= m[k] <= hi and hi - lo > 0.01
    wide = bootstrap_prf(gold[::5], pred[::5], n_boot=500)["f1_ci"]
    assert wide[1] - wide[0] > m["f1_ci"][1] - m["f1_ci"][0]  # fewer items, wider interval


def test_macro_family_threshold_serves_every_family():
    # pooled F1 would pick t in (0.55, 0.9] (0.952) and lose the small family b entirely;
    # the mean per-family F1 picks t in (0.2, 0.5]: a 0.667, b 1.0
    p = [0.9] * 50 + [0.55] * 50 + [0.5] * 5 + [0.2] * 5
    gold = [True] * 50 + [False] * 50 + [True] * 5 + [False] * 5
    fam = ["a"] * 100 + ["b"] * 10
    t, score = macro_family_threshold(p, gold, fam)
    assert 0.2 < t <= 0.5 and score == pytest.approx((2 / 3 + 1) / 2)


def test_views_keep_the_topic_words_and_change_the_form():
    text = "公司股东依法享有资产收益、参与重大决策和选择管理者等权利。公司章程对公司、股东、董事、监事具有约束力；股东应当遵守法律。"
    vs = views(text, "k1")
    assert len(vs) >= 2 and all(v != text for v in vs)
    assert any(re.search(r"A[.:]", v) for v in vs)  # a multiple-choice rendering
    assert all("公司" in v or "股东" in v for v in vs)
    assert views(text, "k1") == vs  # deterministic
    chat = views(text, "k1", chat=True)  # one more view: a first-person consultation built from a clause
    assert chat[:-1] == vs and chat[-1] not in vs
    assert any(c in chat[-1] for c in clauses(text)) and re.search("我|请问|你好|帮我", chat[-1])


def test_domain_text_reads_the_question_not_the_answer():
    q = "请解释《中华人民共和国公司法》关于股东会决议效力的规定，以及可撤销决议的情形。"
    msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": "太阳从东方升起。" * 50}]
    assert domain_text(msgs) == q
    short = [{"role": "user", "content": "解释一下"}, {"role": "assistant", "content": "债券的票面利率是……"}]
    assert "债券" in domain_text(short)


def test_keyword_baseline_counts_hits():
    assert keyword_classifier(1)(["银行贷款利率", "今天天气很好"]) == [True, False]
    assert keyword_classifier(2)(["银行", "银行贷款"]) == [False, True]


def test_leave_one_family_out_on_fixtures(fixtures_dir, tmp_path):
    recs = fixture_families(fixtures_dir)
    logs = []
    res = run_lofo(recs, tmp_path, systems=("kw1", "ours", "ours+lex"), families=("statutes", "exam"), n_boot=200,
                   log=logs.append, dim=8, epoch=5, bucket=20_000, min_count=1)
    assert set(res["families"]) == {"statutes", "exam"} and len(logs) == 8
    for fam, row in res["families"].items():
        sz = res["sizes"][fam]
        assert sz["test"] + sz["dev"] == sum(r["family"] == fam for r in recs)
        for m in row.values():
            assert m["n"] == sz["test"] and m["f1_ci"][0] <= m["f1"] <= m["f1_ci"][1]
        assert 0.05 <= row["ours"]["threshold"] <= 0.95 and 0.05 <= row["ours"]["valid_threshold"] <= 0.95
    # trained without any statute, the model still tells statute articles from BELLE seed tasks
    assert res["families"]["statutes"]["ours"]["f1"] >= 0.6, res["families"]["statutes"]["ours"]
    assert "| statutes |" in markdown_table(res, ("kw1", "ours"))
    # the nested criterion: each family's dev F1 at a threshold its own dev split had no say in
    nd = res["thresholds"]["ours"]["nested_dev_f1"]
    assert set(nd) == {"statutes", "exam", "mean"} and abs(nd["mean"] - (nd["statutes"] + nd["exam"]) / 2) < 1e-3
    # the cascade only ever removes: at one threshold it keeps a subset of what its base model keeps
    for fam in ("statutes", "exam"):
        base, lex = res["families"][fam]["ours"], res["families"][fam]["ours+lex"]
        if lex["threshold"] == base["threshold"]:
            assert lex["recall"] <= base["recall"]
        assert lex["n"] == base["n"]


def test_stack2_to_stack4_weights_of_a_family_never_see_its_own_records(fixtures_dir, tmp_path):
    # v2/v3 stacking fits family F's weights on the training families' validation records and on the
    # *other* held-out families' dev rows (v4: on those rows only): flipping every label of F's dev
    # split leaves F's weights unchanged (the models are reused, so only the stacking differs)
    recs = fixture_families(fixtures_dir)
    kw = dict(systems=("ours", "ours+stack2", "ours+stack3", "ours+stack4"), families=("statutes", "exam"),
              n_boot=50, log=lambda s: None, dim=8, epoch=5, bucket=20_000, min_count=1)
    a = run_lofo(recs, tmp_path, **kw)
    # each fold's lexicon is mined from its own training records: the statutes fold never saw a statute
    assert a["mined"]["ours+stack4"]["statutes"]["records"] < a["mined"]["ours+stack4"]["exam"]["records"]
    for sysname, width in (("ours+stack2", 7), ("ours+stack3", 8), ("ours+stack4", 9)):
        rows = a["stack_rows"][sysname]
        for fam in ("statutes", "exam"):  # every dev record is one aggregated row count, no text
            assert sum(r[-1] for r in rows if r[0] == fam) == a["sizes"][fam]["dev"]
            assert all(len(r) == width and not any(isinstance(x, str) and len(x) > 20 for x in r) for r in rows)
    flipped = [dict(r, label="other" if r["label"] != "other" else "law")
               if r["family"] == "exam" and in_valid(r["id"]) else r for r in recs]
    b = run_lofo(flipped, tmp_path, reuse=True, **kw)
    for sysname in ("ours+stack2", "ours+stack3", "ours+stack4"):
        assert len(a["families"]["exam"][sysname]["weights"]) == 5
        assert b["families"]["exam"][sysname]["weights"] == a["families"]["exam"][sysname]["weights"]
        # ... while the statutes family's weights, fit with exam's dev rows, do change
        assert b["families"]["statutes"][sysname]["weights"] != a["families"]["statutes"][sysname]["weights"]


def test_pseudo_positives_take_strong_domain_requests_and_leave_the_rest():
    from filters.domain.families import pseudo_positives

    pool = [{"id": "a", "text": "请问银行贷款利率和股票投资的风险如何比较？", "source": "p"},
            {"id": "b", "text": "感冒发烧了，医生说要多喝水，银行卡丢了怎么办", "source": "p"},
            {"id": "c", "text": "写一首关于大海的诗", "source": "p"},
            {"id": "d", "text": "法院判决合同违约，被告律师提起诉讼，这符合法律吗？", "source": "p"}]
    got = {r["id"]: r["label"] for r in pseudo_positives(pool)}
    assert got == {"a": "finance", "d": "law"}
