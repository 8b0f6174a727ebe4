"""Format views of a training text, so that the *form* of a text never stands in for its topic.

The labelled sources each come in one form: finance/law data are exam questions, statutes and
Q&A; the topic-diverse negatives are news titles, app descriptions and abstracts. A classifier
trained on them as they are learns "multiple choice ⇒ law", "formal prose ⇒ law", "short title ⇒
other" — and fails on exam questions about physics or news titles about the economy. Every
training text is therefore also shown in the other forms, keeping its label: a *title* (one
clause of it), a *question* built from a clause, a *multiple-choice item* whose stem and options
are its own clauses. Which views a text gets is decided by a hash of its id (reproducible).
"""
from __future__ import annotations

import hashlib
import re

_SPLIT = re.compile(r"[。！？；;!?\n，,：:、]+")
_QUESTION = ("什么是{c}？", "请解释：{c}", "{c}，这是为什么？", "如何理解“{c}”？", "请简要介绍{c}。",
             "{c}的主要内容有哪些？", "关于{c}，你怎么看？", "{c}是指什么？")
_MCQ_STEM = ("关于{c}，下列说法正确的是：", "下列关于{c}的表述，错误的是？", "{c}。下列哪一项是正确的？",
             "根据材料，{c}，以下说法正确的是", "{c}，对此下列选项中最恰当的是：")

# first-person consultation forms (the register of users' questions: "我父亲…担保…要负责吗"): without
# them the only colloquial text in training is the unlabelled-pool pseudo-negatives, so "colloquial
# first person ⇒ other" — and held out, legal and financial consultations were scored at logit ≈ −9
_CHAT = ("我想问一下，{c}，这种情况该怎么办？", "请问{c}的话需要注意什么？", "你好，{c}，想咨询一下怎么处理",
         "我朋友说{c}，这是真的吗？", "帮我看看：{c}，有什么建议吗？", "{c}，我现在很着急，请问怎么办？")


def _h(key: str) -> int:
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:8], 16)


def clauses(text: str, lo: int = 4, hi: int = 40) -> list[str]:
    return [c.strip()[:hi] for c in _SPLIT.split(text[:600]) if len(c.strip()) >= lo]


def views(text: str, key: str, chat: bool = False) -> list[str]:
    """Extra renderings of ``text`` (its label unchanged): title, question and multiple-choice forms
    (and, with ``chat``, a first-person consultation)."""
    cs = clauses(text)
    if not cs:
        return []
    h = _h(key)
    out = []
    title = cs[h % min(3, len(cs))]
    if len(title) >= 6 and title != text.strip():
        out.append(title)
    out.append(_QUESTION[h % len(_QUESTION)].format(c=title))
    if len(cs) >= 3:
        stem = _MCQ_STEM[(h >> 4) % len(_MCQ_STEM)].format(c=cs[0])
        opts = cs[1:5]
        letters = "ABCD"
        sep = ";" if (h >> 8) % 2 else "\n"
        body = sep.join(f"{letters[i]}{'.' if sep == chr(10) else ':'}{o}" for i, o in enumerate(opts))
        out.append(f"{stem}{sep if sep == chr(10) else ''}{body}")
    if chat:
        out.append(_CHAT[(h >> 12) % len(_CHAT)].format(c=cs[(h >> 16) % len(cs)]))
    return out
