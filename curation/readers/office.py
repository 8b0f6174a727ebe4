"""DOCX → text with python-docx: paragraphs in order, tables as Markdown rows, core title/date."""
from __future__ import annotations

import io

from curation.readers.base import Extracted, ExtractError


def _table_md(table) -> str:
    rows = []
    for r in table.rows:
        cells = [c.text.strip().replace("\n", " ").replace("|", "\\|") for c in r.cells]
        rows.append("| " + " | ".join(cells) + " |")
    if len(rows) > 1:
        rows.insert(1, "|" + "---|" * len(table.columns))
    return "\n".join(rows)


def extract_docx(data: bytes, path: str, tables: str = "markdown") -> list[Extracted]:
    if not data:
        raise ExtractError("empty_file", "zero bytes")
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        d = docx.Document(io.BytesIO(data))
    except Exception as e:  # python-docx raises zipfile/KeyError/ValueError on broken files
        raise ExtractError("docx_unreadable", f"{type(e).__name__}: {e}") from None
    parts: list[str] = []
    for child in d.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            t = Paragraph(child, d).text.strip()
            if t:
                parts.append(t)
        elif tag == "tbl" and tables != "drop":
            parts.append(_table_md(Table(child, d)))
    text = "\n".join(parts)
    if not text.strip():
        raise ExtractError("docx_no_text", "no paragraph text")
    md = {"extractor": "python-docx", "format": "docx"}
    cp = d.core_properties
    if cp.title:
        md["title"] = cp.title
    if cp.created:
        md["date"] = cp.created.date().isoformat()
    return [Extracted(text=text, metadata=md)]
