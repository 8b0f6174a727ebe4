import json
from collections import Counter

import pytest
from datatrove.data import Document

from curation.normalize import ZhNormalizer
from curation.quality.boilerplate import BoilerplateLineRemover
from curation.quality.filters import QualityThresholds, ZhQualityFilter, check_scores
from curation.quality.scores import garbled_score, score_text, top_ngram_frac


def _chain(texts, thresholds=None):
    steps = [ZhNormalizer(), BoilerplateLineRemover(), ZhQualityFilter(thresholds)]
    data = (Document(text=t, id=str(i)) for i, t in enumerate(texts))
    for s in steps:
        data = s.run(data)
    kept = list(data)
    return kept, steps[-1]


def test_laws_fixture_drop_rate_at_most_one_percent(fixtures_dir):
    laws = [json.loads(x)["text"] for x in (fixtures_dir / "laws" / "laws_sample.jsonl").open(encoding="utf-8")]
    kept, f = _chain(laws)
    assert len(laws) - len(kept) <= 0.01 * len(laws), {k: v.total for k, v in f.stats.stats.items()}
    assert all("quality.cjk_ratio" in d.metadata and "quality.garbled" in d.metadata for d in kept)


def test_bad_text_set_is_dropped_entirely(fixtures_dir):
    items = [json.loads(x) for x in (fixtures_dir / "curation" / "bad_text.jsonl").open(encoding="utf-8")]
    assert {i["kind"] for i in items} == {"garbled", "boilerplate", "spam"}
    kept, f = _chain([i["text"] for i in items])
    assert kept == [], [d.text[:60] for d in kept]
    reasons = {k for k in f.stats.stats if k.startswith("dropped_")}
    assert {"dropped_garbled_text", "dropped_duplicate_lines"} <= reasons


def test_bad_text_dropped_by_the_filter_alone(fixtures_dir):
    # without the boilerplate line remover, nav-only pages must still fail a character statistic
    items = [json.loads(x) for x in (fixtures_dir / "curation" / "bad_text.jsonl").open(encoding="utf-8")]
    n = ZhNormalizer()
    reasons = Counter((i["kind"], check_scores(score_text(n.format(i["text"])), QualityThresholds())) for i in items)
    assert not [k for k in reasons if k[1] is None], reasons


def test_exclusion_writer_gets_reason(tmp_path):
    from corpora_manifests.rejects import read_rejects
    from curation.rejects import rejects_writer

    f = ZhQualityFilter(exclusion_writer=rejects_writer(tmp_path, "quality"))
    docs = [Document(text="短", id="a", metadata={"file_path": "x.txt"}),
            Document(text="国有资产" * 300, id="b")]
    assert list(f.run(iter(docs), rank=3)) == []
    rows = read_rejects(tmp_path / "rejects")
    assert {r["id"]: r["reason"] for r in rows} == {"a": "too_short", "b": "repeated_2gram"}
    assert (tmp_path / "rejects" / "quality" / "00003.jsonl").exists()
    assert rows[0]["stage"] == "quality" and "scores" in rows[0]


def test_scores():
    assert top_ngram_frac("甲乙" * 50, 2) == pytest.approx(1.0, abs=0.02)
    assert top_ngram_frac("国务院关于印发国家职业教育改革实施方案的通知", 2) == 0.0
    clean = "第一条 为了加强企业国有资产监督管理，制定本条例。"
    assert garbled_score(clean) == 0.0
    assert garbled_score(clean.encode("utf-8").decode("gbk", errors="replace")) > 0.3
    s = score_text("第一行。\n第一行。\n第二行没有标点")
    assert s["dup_line_frac"] == pytest.approx(4 / 15, abs=1e-6)
    assert s["punct_end_frac"] == pytest.approx(2 / 3)


def test_boilerplate_lines_removed_statute_lines_kept():
    b = BoilerplateLineRemover()
    text = ("首页 > 政策 > 文件\n第十条 版权所有人的权利受法律保护。\n正文第一段。\n上一篇：关于某事的通知\n"
            "扫一扫在手机打开当前页\n版权所有：中国政府网 京ICP备05070218号\n责任编辑：王五")
    out, removed = b.clean(text)
    assert removed == 5  # breadcrumb, 上一篇, 扫一扫, 版权所有, 责任编辑
    assert "第十条 版权所有人的权利受法律保护。" in out and "正文第一段。" in out
    long_line = "本条例所称版权所有人，" + "是指依法享有著作权的自然人、法人或者非法人组织" * 3 + "。"
    assert b.clean(long_line)[1] == 0
