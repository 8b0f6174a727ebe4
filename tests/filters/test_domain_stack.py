"""Stacking (filters/domain/stack.py): weights learnt from validation-like data, used by DomainModel."""
import json
import shutil

import numpy as np
import pytest

from filters.domain import stack
from filters.domain.model import DomainModel, sidecar_path

IN = ["银行贷款利率上调", "公司股东大会决议", "法院判决合同违约", "政府发布财政政策", "股票市场投资风险"]
OUT = ["今天天气很好", "猫喜欢晒太阳", "如何烤一个蛋糕", "写一首关于大海的诗", "月亮为什么会发光"]


def test_fit_learns_which_evidence_separates_the_classes():
    # P(in) is noise (the same for both classes); the keyword/topic evidence is what separates them
    texts = IN * 20 + OUT * 20
    gold = [True] * 100 + [False] * 100
    p = [0.6] * 200
    w = stack.fit(p, texts, gold, ["a"] * 200)
    assert w[2] + w[3] > 1.0  # keyword + topic hits push towards in-domain
    s = stack.apply(w, p, texts)
    assert s[:100].min() > s[100:].max()
    # the feature row: bias, P(in), keyword hits/4, topic hits/4, general-task marker
    assert stack.features([0.5], ["用三个词形容天空"]).tolist() == [[1.0, 0.5, 0.0, 0.0, 0.0]]


def _stacked_copy(tiny_model, m_path, weights, features, threshold=None) -> DomainModel:
    """The tiny model with stacking weights written into its sidecar (and a threshold if given)."""
    shutil.copy(tiny_model, m_path)
    side = json.loads(sidecar_path(tiny_model).read_text(encoding="utf-8"))
    side["stack"] = {"weights": weights, "features": list(features)}
    if threshold is not None:
        side["threshold"] = threshold
    sidecar_path(m_path).write_text(json.dumps(side, ensure_ascii=False), encoding="utf-8")
    return DomainModel(m_path)


def test_stacked_model_scores_with_the_texts(tiny_model, tmp_path):
    w = [-2.0, 1.0, 4.0, 4.0, -1.0]
    raw, stacked = DomainModel(tiny_model), _stacked_copy(tiny_model, tmp_path / "stacked.bin", w, stack.FEATURES, 0.5)
    texts = IN + OUT
    p_raw = raw.predict_arrays(raw.lines(texts))[1]
    got = np.array([p.p_in for p in stacked.predict(texts)])
    assert np.allclose(got, stack.apply(w, p_raw, texts))
    assert np.allclose(stacked.raw_p_in(texts), p_raw)
    with pytest.raises(ValueError):
        stacked.predict_arrays(stacked.lines(texts))  # the stacked score needs the texts


def test_v2_features_use_the_logit_and_rows_weigh_by_count():
    row = stack.features([0.5, 0.9], ["用三个词形容天空", "银行贷款利率"], stack.FEATURES_V2)
    assert row[0].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert abs(row[1, 1] - np.log(9) / 4) < 1e-9 and row[1, 2] > 0
    texts = IN * 20 + OUT * 20
    gold = [True] * 100 + [False] * 100
    p = [0.6] * 200
    rows = stack.aggregate_rows("fam", p, texts, gold)
    assert sum(r[-1] for r in rows) == 200 and len(rows) <= 10  # identical records merged into one row
    # aggregated rows fit the same weights as the records they stand for (same cells, same counts)
    w_rows = stack.fit([], [], [], [], names=stack.FEATURES_V2, rows=rows)
    w_recs = stack.fit(p, texts, gold, ["fam"] * 200, names=stack.FEATURES_V2)
    assert np.allclose(w_rows, w_recs, atol=1e-3)
    # out-of-family rows where P(in) is confidently wrong teach the fit not to trust it
    liar = [["f", True, -2.0, 0, 0, 0, 100], ["f", False, 2.0, 0, 0, 0, 100]]
    w_liar = stack.fit([0.99] * 100 + [0.01] * 100, texts, gold, ["g"] * 200, names=stack.FEATURES_V2, rows=liar)
    w_alone = stack.fit([0.99] * 100 + [0.01] * 100, texts, gold, ["g"] * 200, names=stack.FEATURES_V2)
    assert w_liar[1] < w_alone[1]
    with pytest.raises(ValueError):
        stack.fit(p, texts, gold, ["g"] * 200, rows=rows)  # v1 features cannot take logit rows


def test_v2_stacked_model_scores_with_its_feature_list(tiny_model, tmp_path):
    w = [-1.0, 1.0, 2.0, 2.0, -1.0]
    raw, stacked = DomainModel(tiny_model), _stacked_copy(tiny_model, tmp_path / "stacked2.bin", w, stack.FEATURES_V2)
    texts = IN + OUT
    p_raw = raw.predict_arrays(raw.lines(texts))[1]
    got = np.array([p.p_in for p in stacked.predict(texts)])
    assert np.allclose(got, stack.apply(w, p_raw, texts, stack.FEATURES_V2))
    assert not np.allclose(got, stack.apply(w, p_raw, texts))  # the v1 formula would score differently


def test_v3_other_topic_hits_pull_the_net_balance_down():
    X = stack.features([0.5, 0.5, 0.5], ["银行贷款利率上调", "感冒发烧吃什么药", "法院判决医院赔偿患者"],
                       stack.FEATURES_V3)
    assert X[:, 1].tolist() == [0.0, 0.0, 0.0]  # logit(0.5)
    assert X[0, 3] > 0 > X[1, 3]  # domain terms vs medical terms
    assert X[1, 3] < X[2, 3] < X[0, 3]  # both kinds: in between
    # fit on records that differ only in the lexicon: other-topic evidence learns a negative pull
    texts = IN * 20 + OUT * 20 + ["感冒发烧吃什么药", "医生建议患者减肥"] * 20
    gold = [True] * 100 + [False] * 140
    p = [0.6] * 240
    w = stack.fit(p, texts, gold, ["a"] * 240, names=stack.FEATURES_V3)
    s = stack.apply(w, p, texts, stack.FEATURES_V3)
    assert s[:100].min() > s[100:].max()
    rows = stack.aggregate_rows("a", p, texts, gold, stack.FEATURES_V3)
    assert all(len(r) == 8 for r in rows)
    assert np.allclose(stack.fit([], [], [], [], names=stack.FEATURES_V3, rows=rows), w, atol=1e-3)
    with pytest.raises(ValueError):  # v2-format rows have no other-topic counts
        stack.fit([], [], [], [], names=stack.FEATURES_V3, rows=[r[:6] + r[7:] for r in rows])
