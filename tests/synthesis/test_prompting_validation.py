import pytest

from synthesis.prompting import ParseError, load_template, parse_pairs
from synthesis.validation import NearDuplicateIndex, check_pair, grounding_score

CHUNK = "第二条 本法所称企业国有资产，是指国家对企业各种形式的出资所形成的权益。"


def test_templates_are_versioned_chinese_and_render():
    qa = load_template("qa_v1")
    rep = load_template("report_v1")
    assert len(qa.sha256) == 64 and qa.sha256 != rep.sha256
    msgs = qa.render(title="企业国有资产法", heading="第一章", text=CHUNK, n_pairs=3)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert CHUNK in msgs[1]["content"] and "JSON" in msgs[1]["content"] and "{{" not in msgs[1]["content"]
    assert "报告" in rep.render(title="t", heading="h", text=CHUNK)[1]["content"]


def test_parser_tolerates_fences_chatter_and_truncation():
    fenced = '好的，以下是问答：\n```json\n[{"question": "什么是企业国有资产？", "answer": "国家出资形成的权益"}]\n```\n希望有帮助。'
    pairs, salvaged = parse_pairs(fenced)
    assert pairs == [{"question": "什么是企业国有资产？", "answer": "国家出资形成的权益"}] and not salvaged
    chinese_keys = '[{"问题": "谁履行出资人职责？", "答案": "国资委"}]'
    assert parse_pairs(chinese_keys)[0][0]["answer"] == "国资委"
    wrapped = '{"pairs": [{"question": "a是什么？", "answer": "b"}]}'
    assert len(parse_pairs(wrapped)[0]) == 1
    truncated = '```json\n[{"question": "问一是什么？", "answer": "答一"}, {"question": "问二是什么？", "answer": "答'
    pairs, salvaged = parse_pairs(truncated)
    assert salvaged and pairs == [{"question": "问一是什么？", "answer": "答一"}]
    for bad in ["", "抱歉，我无法回答。", '{"foo": 1}', "```json\n[{\"question\": \"x"]:
        with pytest.raises(ParseError):
            parse_pairs(bad)


def test_pair_checks():
    ok = {"question": "什么是企业国有资产？", "answer": "企业国有资产是指国家对企业各种形式的出资所形成的权益。"}
    reason, score = check_pair(ok, CHUNK, task_type="qa")
    assert reason is None and score > 0.9
    assert check_pair({"question": "什么是企业国有资产？", "answer": "量子计算机利用叠加态进行并行运算。"}, CHUNK,
                      task_type="qa")[0] == "not_grounded"
    assert check_pair({"question": "企业国有资产的定义。", "answer": ok["answer"]}, CHUNK, task_type="qa")[0] == "not_a_question"
    assert check_pair({"question": "本文说了什么？", "answer": ok["answer"]}, CHUNK, task_type="qa")[0] == "question_refers_to_prompt"
    assert check_pair({"question": "什么是企业国有资产？", "answer": "  "}, CHUNK, task_type="qa")[0] == "empty"
    assert check_pair({"question": ["x"], "answer": "y"}, CHUNK, task_type="qa")[0] == "schema"
    assert grounding_score("，。！", CHUNK) == 0.0


def test_near_duplicates_removed_first_seen_wins():
    idx = NearDuplicateIndex(threshold=0.8)
    a = "什么是企业国有资产？\n企业国有资产是指国家对企业各种形式的出资所形成的权益，包括国有独资企业和国有资本控股公司中的权益。"
    assert idx.add("a", a) is None
    assert idx.add("b", a.replace("权益。", "权益！")) == "a"
    assert idx.add("c", "谁履行出资人职责？\n国务院和地方人民政府分别代表国家履行出资人职责，享有出资人权益。") is None
