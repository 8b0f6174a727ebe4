"""Cascade stage 2 (filters/domain/lexicon.py) inside the real DomainFilter with the shipped model."""
from datatrove.data import Document

from filters.domain.lexicon import is_general_task, lexicon_gate, request_text, topic_hits
from filters.steps import DomainFilter

REQUESTS = {
    # request -> what stage 2 must say (None = passes)
    "解释通货膨胀对储蓄的影响。": None,
    "列出合同的 4 个要素。": None,
    "比较和对比民主和极权主义。": None,
    "用三个词形容天空": "domain_no_topic_term",
    "将此分数转换为百分比": "domain_no_topic_term",
    "给出制作冰沙的三个步骤": "domain_no_topic_term",
    # a domain word only in the attached input is material, not topic
    "对语句进行情绪分析并输出情绪分数。\n政府在应对这一流行病方面做得非常好。": "domain_no_topic_term",
    # a language task on a domain text
    "把这句关于股票市场的话改写得更简洁。\n股市一直在稳步下跌。": "domain_general_task",
    "为一家公司想一个朗朗上口的口号。\n公司：互联网安全服务": "domain_general_task",
}


def _doc(i: int, question: str) -> Document:
    msgs = [{"role": "user", "content": question}, {"role": "assistant", "content": "好的。"}]
    return Document(text=question, id=str(i), metadata={"messages": msgs})


def test_gate_reads_the_request_and_names_the_reason():
    for q, want in REQUESTS.items():
        assert lexicon_gate(q) == want, q
    # both count only in the instruction line: a domain request quoting any input passes
    assert not is_general_task("解释为何公司税率降至 17%\n背景：把这句话改写一下")
    assert lexicon_gate("解释为何公司税率降至 17%\n背景：把这句话改写一下") is None
    assert topic_hits("股票市场的哪个板块包含提供基本服务的公司？") >= 2
    assert request_text([{"role": "system", "content": "税"}, {"role": "user", "content": "天空"},
                         {"role": "user", "content": "税"}]) == "天空"


def test_domain_filter_applies_stage_two_after_the_classifier():
    docs = [_doc(i, q) for i, q in enumerate(REQUESTS)]
    # threshold 0: the classifier keeps everything, so what is dropped is stage 2's doing
    step = DomainFilter(threshold=0.0, keep_domains=["finance", "law", "business", "politics"])
    got = step.filter_batch(docs)
    for d, g, want in zip(docs, got, REQUESTS.values()):
        if want is None:
            assert g is True, d.text
        else:
            assert g == (False, want) and d.metadata["domain.gate"] == want, d.text
    # 0 turns stage 2 off: the classifier alone decides
    off = DomainFilter(threshold=0.0, lexicon_min_hits=0).filter_batch([_doc(i, q) for i, q in enumerate(REQUESTS)])
    assert all(g is True for g in off)


def test_trie_pattern_finds_what_a_longest_first_alternation_finds():
    import re

    from filters.domain.lexicon import OTHER, TASK, TOPIC, _alternation

    texts = ["公司法规定股东的权利，公司应当依法经营", "预算法的立法目的；算法律师", "DNA 与 dna、Python 代码", "感冒发烧吃什么药？医生说",
             "写一首关于大海的诗", ""]
    for words in (TOPIC, TASK, OTHER, ["公司", "公司法", "公", "法律", "法"]):
        forms = {f for w in words for f in (w, w.lower(), w.upper(), w.capitalize())}
        plain = re.compile("|".join(sorted(map(re.escape, forms), key=len, reverse=True)))
        for t in texts:
            assert _alternation(words).findall(t) == plain.findall(t)
