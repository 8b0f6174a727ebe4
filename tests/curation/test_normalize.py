from curation.normalize import ZhNormalizer, collapse_whitespace, fullwidth_to_halfwidth, strip_markup


def test_fullwidth_ascii_to_halfwidth_keeps_chinese_punctuation():
    s = fullwidth_to_halfwidth("ＡＢＣ１２３＠ｅｘａｍｐｌｅ．ｃｏｍ，价格３９．５元（含税）！")
    assert s.startswith("ABC123@example")
    assert "39.5元" in s  # a full-width point between digits is a decimal point
    assert "，" in s and "（含税）！" in s  # Chinese punctuation stays full-width


def test_kangxi_radicals_become_ideographs():
    # PDF fonts emit Kangxi radicals (U+2F00…) for common characters
    assert fullwidth_to_halfwidth("常\u2f64\u2f00般") == "常用一般"


def test_zero_width_control_and_private_use_removed():
    n = ZhNormalizer()
    out = n.format("国\u200b有\ufeff资\u00ad产\x07法\ue000律\u200d")
    assert out == "国有资产法律"


def test_whitespace_collapsed_without_spaces_between_cjk():
    out = collapse_whitespace("第一条  为了\u3000维护 国家 基本经济制度 ， 制定本法。\n\n\n\n第二条 Hello   world 本法")
    assert out == "第一条为了维护国家基本经济制度，制定本法。\n\n第二条 Hello world 本法"


def test_no_space_is_ever_inserted():
    text = "国有资产监督管理委员会（国资委）依法履行出资人职责。"
    assert ZhNormalizer().format(text) == text


def test_html_and_markdown_residue_removed():
    s = strip_markup("# 标题\n**重要**内容&nbsp;见<a href='x'>链接</a>和[说明](http://a.b/c)\n![图](x.png)\n---\n> 引用")
    assert "#" not in s and "**" not in s and "<a" not in s and "](http" not in s and "![" not in s
    assert "重要内容" in s and "链接" in s and "说明" in s and "引用" in s and "\u00a0" in s


def test_traditional_to_simplified_optional():
    text = "國務院關於推進國有資產監督管理的意見"
    assert ZhNormalizer().format(text) == text
    assert ZhNormalizer({"traditional_to_simplified": True}).format(text) == "国务院关于推进国有资产监督管理的意见"


def test_normalizer_is_a_datatrove_step_and_counts_changes():
    from datatrove.data import Document

    n = ZhNormalizer()
    out = list(n.run(iter([Document(text="ＡＢＣ 中 文", id="1"), Document(text="不变。", id="2")])))
    assert [d.text for d in out] == ["ABC 中文", "不变。"]
    assert n.stats.stats["changed"].total == 1
