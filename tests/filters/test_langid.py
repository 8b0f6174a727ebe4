import json

import pytest

from filters.langid import LanguageIdentifier


def _msgs(user: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


@pytest.fixture(scope="module")
def lid():
    return LanguageIdentifier()


def test_chinese_and_english_fixture_prompts(lid, fixtures_dir):
    recs = [json.loads(l) for l in (fixtures_dir / "instructions" / "longwriter_prompts.jsonl").open(encoding="utf-8")]
    zh = [r for r in recs if r["lang"] == "zh"]
    en = [r for r in recs if r["lang"] == "en"]
    assert zh and en
    for r in zh:
        res = lid.identify(_msgs(r["instruction"], ""))
        assert res.keep and res.label == "zh", r["instruction"][:40]
    for r in en:
        res = lid.identify(_msgs(r["instruction"], ""))
        assert not res.keep, r["instruction"][:40]
    md = lid.identify(_msgs(zh[0]["instruction"], "")).metadata()
    assert {"lang.label", "lang.score", "lang.zh_share", "lang.mixed"} <= set(md)


def test_short_chinese_is_not_japanese(lid):
    # lid.176 labels short Han-only sentences "ja"; without kana they are Chinese.
    res = lid.identify(_msgs("求五边形的内角和。", "五边形的内角和是540度。"))
    assert res.keep and res.label == "zh"


def test_code_blocks_do_not_make_a_chinese_answer_mixed(lid):
    code = "```python\n" + "\n".join(f"def function_{i}(value):\n    return value * {i}" for i in range(30)) + "\n```"
    res = lid.identify(_msgs("请用Python写一个函数，计算给定数值的倍数，并解释代码。",
                             f"下面是实现代码：\n{code}\n这个函数接收一个数值参数，返回它与给定系数的乘积。"))
    assert res.label == "zh" and not res.mixed and res.keep


MIXED = _msgs("请把下面这段话翻译成英文：我们公司今年的营业收入增长了百分之十五。",
              "Our company's operating revenue grew by fifteen percent this year, driven by strong demand "
              "for our products in both domestic and overseas markets.")
MOSTLY_ZH = _msgs("请解释一下什么是 ROE（Return on Equity）指标，以及它在财务分析中的作用。",
                  "净资产收益率（ROE）是净利润与平均股东权益的比率，用来衡量公司运用自有资本的效率。"
                  "在财务分析中，ROE 越高，说明股东投入的资本获得的回报越高；杜邦分析把它分解为销售净利率、"
                  "总资产周转率和权益乘数三个部分，便于找出盈利能力变化的原因。")
ENGLISH = _msgs("Please summarise the following paragraph about the bond market in two sentences.",
                "The bond market rallied as inflation expectations eased and the central bank signalled "
                "that rates would remain unchanged for the rest of the year.")


@pytest.mark.parametrize("policy", ["keep", "drop", "zh_majority"])
def test_mixed_policy(policy):
    lid = LanguageIdentifier(mixed_policy=policy)
    mixed = lid.identify(MIXED)
    assert mixed.mixed and 0.2 <= mixed.zh_share <= 0.8
    expected = {"keep": True, "drop": False, "zh_majority": mixed.zh_share >= 0.5}[policy]
    assert mixed.keep is expected
    if not mixed.keep:
        assert mixed.reason in {"lang_mixed", "lang_mixed_minority_zh"}
    # A Chinese answer with a few English terms is not "mixed": every policy keeps it.
    zh = lid.identify(MOSTLY_ZH)
    assert zh.keep and zh.label == "zh" and not zh.mixed
    # English is dropped whatever the policy.
    en = lid.identify(ENGLISH)
    assert not en.keep and en.reason == "lang_not_zh"


@pytest.mark.large_data
def test_language_id_accuracy_on_shared_instruction_sets(shared_data):
    """≥ 99 % on the zh-vs-en records (their `lang` field) of the shared instruction sets."""
    lid = LanguageIdentifier()
    ok = n = 0
    for name in ("llamafactory_demo_sft", "longwriter_prompts", "belle_eval_set", "firefly_dummy"):
        for line in (shared_data / name / "data.jsonl").open(encoding="utf-8"):
            r = json.loads(line)
            if r.get("lang") not in ("zh", "en"):
                continue
            if "instruction" in r:
                msgs = _msgs(r["instruction"], r.get("response") or "")
            else:
                msgs = [{"role": "user" if "human" in m else "assistant", "content": m.get("human") or m.get("assistant") or ""}
                        for m in r["messages"]]
            res = lid.identify(msgs)
            ok += res.keep == (r["lang"] == "zh")
            n += 1
    assert n > 2000
    assert ok / n >= 0.99, f"{ok}/{n}"
