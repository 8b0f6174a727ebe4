"""HTML → main text with trafilatura, after our own encoding detection (see ``encoding.py``).

trafilatura is given a decoded ``str`` (so a GB18030 page declared as gb2312, or one with no
declaration, never reaches its own guessing), tables are kept as text, and title/date metadata is
extracted. When trafilatura finds no main content we retry with ``favor_recall``, then fall back
to its baseline extractor; a page that still yields nothing is rejected (``html_no_text``).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from curation.readers.base import Extracted, ExtractError
from curation.readers.encoding import decode_bytes


class HtmlOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    favor: Literal["precision", "balanced", "recall"] = "balanced"
    include_tables: bool = True
    # gov.cn-style pages lay the whole article out in a table; trafilatura then flattens it into one
    # table row and loses every paragraph break. A table cell longer than this marks a layout table:
    # such tables are turned into <div>s and the page is extracted again (real data tables stay).
    layout_table_cell_chars: int = 300
    with_metadata: bool = True


def _run(html: str, url: str | None, opts: HtmlOptions, favor: str):
    import trafilatura

    return trafilatura.bare_extraction(
        html, url=url, favor_precision=favor == "precision", favor_recall=favor == "recall",
        include_comments=False, include_tables=opts.include_tables, include_images=False,
        include_links=False, deduplicate=False, with_metadata=opts.with_metadata, as_dict=False,
    )


def _unwrap_layout_tables(html: str, cell_chars: int):
    """The page as an lxml tree whose layout tables (a cell > ``cell_chars``) are <div>s."""
    import lxml.html

    try:
        tree = lxml.html.fromstring(html)
    except Exception:
        return None
    changed = False
    for table in list(tree.iter("table")):
        cells = [c for c in table.iter("td", "th") if c.getparent() is not None]
        # only this table's own cells decide (a long nested table decides for itself)
        own = [c for c in cells if next(c.iterancestors("table"), None) is table]
        if any(len(c.text_content().strip()) > cell_chars for c in own):
            for el in [table, *[e for e in table.iter("tbody", "thead", "tfoot", "tr", "td", "th")
                                if next(e.iterancestors("table"), None) is table]]:
                el.tag = "div"
            changed = True
    return tree if changed else None


def _has_layout_table(text: str, cell_chars: int) -> bool:
    for line in text.split("\n"):
        if line.startswith("|") and any(len(c.strip()) > cell_chars for c in line.split("|")):
            return True
    return False


def extract_html(data: bytes, path: str, opts: HtmlOptions | None = None) -> list[Extracted]:
    opts = opts or HtmlOptions()
    if not data.strip():
        raise ExtractError("empty_file", "zero bytes" if not data else "only whitespace")
    html, how = decode_bytes(data, html=True)
    if "<" not in html[:5000]:
        raise ExtractError("not_html", "no markup in the first 5000 characters")
    md = {"extractor": "trafilatura", "format": "html", "encoding": how}
    if "<body" not in html.lower():
        html = f"<html><body>{html}</body></html>"  # trafilatura finds nothing in bare fragments
    doc = _run(html, None, opts, opts.favor)
    text = (doc.text if doc is not None else "") or ""
    if opts.include_tables and _has_layout_table(text, opts.layout_table_cell_chars):
        tree = _unwrap_layout_tables(html, opts.layout_table_cell_chars)
        flat = _run(tree, None, opts, opts.favor) if tree is not None else None
        if flat is not None and flat.text and len(flat.text) >= 0.5 * len(text):
            doc, text = flat, flat.text
            md["html.layout_table"] = True
    if not text.strip() and opts.favor != "recall":
        doc = _run(html, None, opts, "recall") or doc
        text = (doc.text if doc is not None else "") or ""
        md["extractor"] = "trafilatura:recall"
    if not text.strip():
        import trafilatura

        text = trafilatura.baseline(html)[1] or ""
        md["extractor"] = "trafilatura:baseline"
    if not text.strip():
        raise ExtractError("html_no_text", "no main text found")
    if doc is not None:
        if getattr(doc, "title", None):
            md["title"] = doc.title
        if getattr(doc, "date", None):
            md["date"] = doc.date
    return [Extracted(text=text, metadata=md)]
