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


def test_stacked_model_scores_with_the_texts(tiny_model, tmp_path):
    m_path = tmp_path / "stacked.bin"
    shutil.copy(tiny_model, m_path)
    side = json.loads(sidecar_path(tiny_model).read_text(encoding="utf-8"))
    w = [-2.0, 1.0, 4.0, 4.0, -1.0]
    side["stack"] = {"weights": w, "features": list(stack.FEATURES)}
    side["threshold"] = 0.5
    sidecar_path(m_path).write_text(json.dumps(side, ensure_ascii=False), encoding="utf-8")
    raw, stacked = DomainModel(tiny_model), DomainModel(m_path)
    texts = IN + OUT
    p_raw = raw.predict_arrays(raw.lines(texts))[1]
    got = np.array([p.p_in for p in stacked.predict(texts)])
    assert np.allclose(got, stack.apply(w, p_raw, texts))
    assert np.allclose(stacked.raw_p_in(texts), p_raw)
    with pytest.raises(ValueError):
        stacked.predict_arrays(stacked.lines(texts))  # the stacked score needs the texts
