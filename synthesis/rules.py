"""The offline generator ``rules``: article-level Q&A from statutes, no endpoint needed.

For every law article in a chunk: 《法规》第N条规定了什么？ → the article's text. For chunks picked
by ``report_fraction`` that hold a chapter of several articles: a report task summarising the
chapter article by article. Items are marked ``origin: rules`` so they are never mistaken for
model output; answers are the statute's own words, so their grounding score is ~1.
"""
from __future__ import annotations

import re

from .chunking import Chunk
from .items import wants_report

_LABEL_PREFIX = re.compile(r"^第[^条]{1,10}条(?:之[^\s　]{1,4})?[\s\u3000]*")


def _law_name(title: str) -> str:
    return title.strip().strip("《》") or "该法规"


def _body(text: str) -> str:
    return _LABEL_PREFIX.sub("", text.strip(), count=1).strip()


def rules_pairs(chunk: Chunk, report_fraction: float = 0.03, min_report_articles: int = 3) -> list[dict]:
    """Raw pairs ``{question, answer, task_type, rule}`` for one chunk (validated downstream)."""
    law = _law_name(chunk.title)
    out: list[dict] = []
    articles = chunk.articles
    for art in articles:
        body = _body(art.text)
        if not body:
            continue
        out.append({
            "question": f"《{law}》{art.label}规定了什么？",
            "answer": f"《{law}》{art.label}规定：{body}",
            "task_type": "qa", "rule": "article",
        })
    if len(articles) >= min_report_articles and wants_report(chunk.chunk_id, report_fraction):
        scope = f"“{chunk.heading}”" if chunk.heading else f"{articles[0].label}至{articles[-1].label}"
        lines = [f"《{law}》{scope}部分要点报告", "",
                 f"一、概述：本部分包括{articles[0].label}至{articles[-1].label}，共{len(articles)}条。", "",
                 "二、主要规定："]
        for i, art in enumerate(articles, 1):
            lines.append(f"{i}. {art.label}：{_body(art.text)}")
        lines += ["", f"三、小结：以上{len(articles)}条构成《{law}》{scope}部分的主要内容，执行中应逐条对照落实。"]
        out.append({
            "question": f"请撰写一份关于《{law}》{scope}部分主要规定的要点报告，逐条说明各条款的内容。",
            "answer": "\n".join(lines), "task_type": "report", "rule": "chapter_report",
        })
    return out
