"""Structure-aware chunking of domain documents within a token budget.

A document is cut into *units* — headings (Markdown ``#`` or 第N编/章/节), law articles (第N条 with
its following paragraphs, i.e. its 款/项) and plain paragraphs — and consecutive units are packed
into chunks of at most ``max_tokens`` Qwen2.5 tokens. A heading always opens a new chunk, so a
chunk never straddles two chapters; a unit longer than the budget is cut at sentence ends.

Chunk ids are ``sha256(doc_id, chunk text)``: the same document chunked with the same settings
gives the same ids in every run, which is what makes the request cache and the review store
line up across restarts.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from .sources import SourceDoc

_CN_NUM = "零〇一二三四五六七八九十百千两0-9０-９"
ARTICLE_RE = re.compile(rf"^(第[{_CN_NUM}]+条(?:之[{_CN_NUM}]+)?)[\s\u3000]*")
HEADING_RE = re.compile(rf"^(#+\s*.+|第[{_CN_NUM}]+[编章节][\s\u3000].*|第[{_CN_NUM}]+[编章节])$")
_SENT_END = re.compile(r"(?<=[。！？；!?;])")
_INFO_END = "<!-- INFO END -->"


@dataclass
class Unit:
    kind: str  # "heading" | "article" | "paragraph" | "preamble"
    text: str
    label: str = ""  # 第N条 for articles, the heading text for headings


@dataclass
class Chunk:
    chunk_id: str
    doc_id: str
    group: str
    title: str
    index: int
    text: str
    heading: str  # the chapter/section path the chunk sits under
    n_tokens: int
    units: list[Unit] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def articles(self) -> list[Unit]:
        return [u for u in self.units if u.kind == "article"]


def chunk_id_for(doc_id: str, text: str) -> str:
    return "c" + hashlib.sha256(f"{doc_id}\x00{text}".encode("utf-8")).hexdigest()[:20]


def split_units(text: str) -> list[Unit]:
    """Paragraph blocks classified as heading / article / paragraph; 款 join their article."""
    preamble = ""
    if _INFO_END in text:
        preamble, text = text.split(_INFO_END, 1)
    units: list[Unit] = []
    if preamble.strip():
        units.append(Unit("preamble", preamble.strip()))
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if not block:
            continue
        first = block.splitlines()[0].strip()
        if HEADING_RE.match(first) and len(first) <= 60 and len(block.splitlines()) == 1:
            units.append(Unit("heading", first.lstrip("#").strip(), first.lstrip("#").strip()))
            continue
        m = ARTICLE_RE.match(first)
        if m:
            units.append(Unit("article", block, m.group(1)))
        elif units and units[-1].kind == "article":
            # a paragraph after an article is one of its 款 (clauses): keep them together
            units[-1].text += "\n" + block
        else:
            units.append(Unit("paragraph", block))
    return units


def _split_long(text: str, budget: int, count) -> list[str]:
    pieces = [s for s in _SENT_END.split(text) if s]
    out: list[str] = []
    cur = ""
    for s in pieces:
        if cur and count(cur + s) > budget:
            out.append(cur)
            cur = ""
        while count(s) > budget:  # one sentence over budget: hard cut by characters
            cut = max(1, len(s) * budget // max(count(s), 1))
            out.append(s[:cut])
            s = s[cut:]
        cur += s
    if cur:
        out.append(cur)
    return out


def chunk_document(doc: SourceDoc, tokenizer, max_tokens: int = 1024, min_chars: int = 40) -> list[Chunk]:
    from corpora_manifests.tokenizer import count_tokens

    def count(t: str) -> int:
        return count_tokens(tokenizer, [t])[0]

    units = split_units(doc.text)
    # Token counts of all units in one batch through the Rust backend.
    sizes = count_tokens(tokenizer, [u.text for u in units])
    chunks: list[Chunk] = []
    heading_path: dict[int, str] = {}
    cur: list[Unit] = []
    cur_tokens = 0
    cur_heading = ""

    def flush() -> None:
        nonlocal cur, cur_tokens
        body = [u for u in cur if u.kind != "heading"]
        text = "\n\n".join(u.text for u in cur)
        if body and len(text) >= min_chars:
            chunks.append(Chunk(
                chunk_id=chunk_id_for(doc.doc_id, text), doc_id=doc.doc_id, group=doc.group, title=doc.title,
                index=len(chunks), text=text, heading=cur_heading, n_tokens=cur_tokens, units=list(cur),
                meta=dict(doc.meta),
            ))
        cur, cur_tokens = [], 0

    for unit, size in zip(units, sizes):
        if unit.kind == "preamble":
            continue  # promulgation dates and the like: metadata, not content to ask about
        if unit.kind == "heading":
            flush()
            level = _heading_level(unit.text)
            heading_path = {k: v for k, v in heading_path.items() if k < level}
            heading_path[level] = unit.text
            cur_heading = " ".join(heading_path[k] for k in sorted(heading_path) if heading_path[k] != doc.title)
            cur, cur_tokens = [unit], size
            continue
        if size > max_tokens:
            flush()
            for piece in _split_long(unit.text, max_tokens, count):
                cur, cur_tokens = [Unit(unit.kind, piece, unit.label)], count(piece)
                flush()
            continue
        if cur and cur_tokens + size > max_tokens:
            flush()
        cur.append(unit)
        cur_tokens += size
    flush()
    return chunks


def _heading_level(text: str) -> int:
    if "编" in text[:8] and text.startswith("第"):
        return 1
    if "章" in text[:8] and text.startswith("第"):
        return 2
    if "节" in text[:8] and text.startswith("第"):
        return 3
    return 0


def chunk_documents(docs: Iterable[SourceDoc], tokenizer, max_tokens: int = 1024, min_chars: int = 40):
    for doc in docs:
        yield from chunk_document(doc, tokenizer, max_tokens=max_tokens, min_chars=min_chars)
