"""PDF → body text: pypdfium2 for text, pdfplumber for tables and as the fallback engine.

Per page:
1. pypdfium2 gives text runs with positions (fast and faithful on plain text); runs are grouped
   into lines.
2. If pdfium cannot map the glyphs (U+FFFD, or most characters unmapped — CJK fonts without a
   ToUnicode map, common in 公文), the page is re-read with pdfplumber (pdfminer knows the
   predefined Adobe CMaps). If that still leaves ``(cid:N)`` or U+FFFD the page is *bad*.
3. A page mostly covered by one image is a scan: with no text it is *image-only*; with text the
   text is an OCR layer; it is a *garbage text layer* when it is invisible (render mode 3) and its
   glyphs are unmapped, or it is garbled, or read with doubled fragments (``已经已经``, ``：“：“``: some pdfium builds
   interleave two copies of the layer): those pages are dropped. Other OCR layers are kept
   (``scanned_pages: keep``, the default; ``reject`` drops every scanned page) and meet the
   quality filters like any text; ``pdf.ocr_pages`` counts them.
4. Ruled tables (pages with ≥ 2 long horizontal and ≥ 2 long vertical rules) are located with pdfplumber; lines inside a table
   are removed and, with ``tables: markdown``, replaced by the table as Markdown.

Across pages, lines in the top/bottom ``margin`` band that repeat on ≥ 2 pages (digits ignored) or
look like page numbers ("4", "- 4 -", "第 4 页", "第Ⅰ页 共Ⅱ页", "iv") are running headers/footers and
are removed. Lines that run to the right edge without ending a sentence are joined with the next
(also across pages), so paragraphs come out whole.

Document decisions: no usable page → rejected with the dominant reason (``pdf_image_only``,
``pdf_garbage_text_layer``, ``pdf_scanned_text_layer``, ``pdf_unmapped_glyphs``); bad pages above
``max_bad_page_frac`` → ``pdf_unmapped_glyphs``. ``max_pages`` and ``time_limit_s`` stop early and
keep what was read (``pdf.truncated`` in metadata).
"""
from __future__ import annotations

import io
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from curation.readers.base import Extracted, ExtractError


class PdfOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_pages: int = Field(2000, gt=0)
    time_limit_s: float = Field(240.0, gt=0, description="soft limit: stop between pages, keep what was read")
    tables: Literal["markdown", "drop", "keep"] = "markdown"
    remove_headers_footers: bool = True
    margin: float = Field(0.10, ge=0, le=0.3, description="top/bottom band (share of page height) for headers/footers")
    join_lines: bool = True
    scanned_pages: Literal["reject", "keep"] = "keep"
    image_cover: float = Field(0.7, gt=0, le=1, description="image area share that makes a page a scan")
    max_bad_page_frac: float = Field(0.2, ge=0, le=1)
    max_doubled_frac: float = Field(0.08, ge=0, le=1, description=(
        "an OCR layer (scanned page) whose Chinese text has more than this share inside immediately "
        "repeated 2-4-char fragments (已经已经) is a garbage layer; clean prose stays under 0.02"))
    drop_toc_lines: bool = Field(True, description="table-of-contents lines with dot leaders and a page number")
    drop_numeric_lines: bool = Field(True, description="lines without any letter (chart axes, stray numbers)")


@dataclass
class Line:
    text: str
    left: float
    bottom: float
    right: float
    top: float

    @property
    def height(self) -> float:
        return max(self.top - self.bottom, 1.0)


_TERMINAL = tuple("。！？；：…”」』.!?;:")  # not 》）: a title or bracket ends lines mid-sentence
_PAGE_NO = re.compile(
    r"^(?:[-–—·•\s]*\d{1,4}[-–—·•\s]*|第\s*[\dⅠ-ⅫivxlcIVXLC一二三四五六七八九十]+\s*页(?:\s*[/,，]?\s*共\s*[\dⅠ-ⅫivxlcIVXLC一二三四五六七八九十]+\s*页)?"
    r"|[ivxlcIVXLCⅠ-Ⅻ]{1,6}|\d{1,4}\s*/\s*\d{1,4}|page\s*\d+(\s*of\s*\d+)?)$", re.I)
_DIGITS = re.compile(r"[\dⅠ-Ⅻ]+")


def _pdfium_lines(textpage) -> list[Line]:
    n = textpage.count_rects()
    lines: list[Line] = []
    for i in range(n):
        l, b, r, t = textpage.get_rect(i)
        if t - b < 1:  # some producers (reportlab CID fonts) give zero-height runs
            b, t = b - 1.5, t + 1.5
        s = textpage.get_text_bounded(l, b, r, t).replace("\r", "").replace("\n", " ")
        if not s.strip():
            continue
        if t - b < 4:
            # a degenerate run box: use the glyph advance as the size
            size = (r - l) / max(len(s.strip()), 1)
            b, t = b - size / 2 + 1.5, t + size / 2 - 1.5
        if lines:
            prev = lines[-1]
            c, pc = (t + b) / 2, (prev.top + prev.bottom) / 2
            tol = 0.2 * prev.height
            same = prev.bottom - tol <= c <= prev.top + tol or b <= pc <= t
            if same and l >= prev.left - 1:
                gap = l - prev.right
                sep = " " if gap > 0.6 * prev.height else ""
                lines[-1] = Line(prev.text + sep + s, prev.left, min(prev.bottom, b), max(prev.right, r), max(prev.top, t))
                continue
        lines.append(Line(s, l, b, r, t))
    return lines


def _plumber_lines(ppage, height: float) -> list[Line]:
    out = []
    for ln in ppage.extract_text_lines(layout=False, strip=True, return_chars=False):
        out.append(Line(ln["text"], ln["x0"], height - ln["bottom"], ln["x1"], height - ln["top"]))
    return out


def _table_md(rows: list[list]) -> str:
    rows = [[(c or "").replace("\n", " ").replace("|", "\\|").strip() for c in r] for r in rows if r]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    md = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(md)


_TOC = re.compile(r"(?:[.·…．]\s*){5,}\s*[\dⅠ-Ⅻivxlc]+\s*$|^目\s*录$", re.I)
_HAS_LETTER = re.compile(r"[^\W\d_]")


def _header_key(text: str) -> str:
    return _DIGITS.sub("#", "".join(text.split()))


@dataclass
class _Page:
    lines: list[Line]
    width: float
    height: float
    status: str = "ok"  # ok | image_only | scanned | garbage_layer | unmapped
    engine: str = "pdfium"


def _analyse_page(pdf, i: int, plumber_doc, opts: PdfOptions) -> _Page:
    import pypdfium2.raw as raw

    page = pdf[i]
    w, h = page.get_size()
    area = max(w * h, 1.0)
    n_text = 0
    h_rules = v_rules = 0
    image_area = 0.0
    invisible = 0
    for obj in page.get_objects():
        if obj.type == raw.FPDF_PAGEOBJ_TEXT:
            n_text += 1
            if raw.FPDFTextObj_GetTextRenderMode(obj.raw) == raw.FPDF_TEXTRENDERMODE_INVISIBLE:
                invisible += 1
        elif obj.type == raw.FPDF_PAGEOBJ_PATH:
            # ruled tables have long thin horizontal AND vertical rules (or box edges); a chart's
            # ticks are short, and only then is pdfplumber's (slow) table finder worth running
            l, b, r, t = _bounds(obj)
            wd, ht = r - l, t - b
            if ht < 3 and wd > 0.08 * w:
                h_rules += 1
            elif wd < 3 and ht > 0.03 * h:
                v_rules += 1
            elif wd > 0.08 * w and ht > 0.03 * h:
                h_rules += 1
                v_rules += 1
        elif obj.type == raw.FPDF_PAGEOBJ_IMAGE:
            l, b, r, t = _bounds(obj)
            image_area = max(image_area, max(r - l, 0) * max(t - b, 0))
    tp = page.get_textpage()
    n_chars = tp.count_chars()
    lines = _pdfium_lines(tp)
    text = "".join(ln.text for ln in lines)
    visible = len("".join(text.split()))
    # pdfium neither counts nor returns glyphs it cannot map: compare with the text objects drawn
    unmapped = "\ufffd" in text or (n_chars > 20 and visible < 0.5 * n_chars) or (n_text >= 20 and visible < 0.5 * n_text)
    pg = _Page(lines, w, h)
    if unmapped and plumber_doc is not None:
        pl = _plumber_lines(plumber_doc.pages[i], h)
        ptext = "".join(ln.text for ln in pl)
        pg = _Page(pl, w, h, engine="pdfplumber")
        if "(cid:" in ptext or "\ufffd" in ptext or not ptext.strip():
            pg.status = "unmapped"
        text = ptext
    scanned = image_area / area >= opts.image_cover
    if scanned:
        if not "".join(text.split()):
            pg.status = "image_only"
        elif (n_text and invisible / n_text > 0.5 and unmapped) or _garbled("".join(text.split())) \
                or doubled_ratio("".join(text.split())) > opts.max_doubled_frac:
            pg.status = "garbage_layer"
        else:
            pg.status = "scanned"
    elif n_text == 0 and image_area > 0 and not text.strip():
        pg.status = "image_only"
    if pg.status == "ok" and opts.tables != "keep" and h_rules >= 2 and v_rules >= 2 and plumber_doc is not None:
        _apply_tables(pg, plumber_doc.pages[i], opts)
    page.close()
    return pg


def _bounds(obj) -> tuple[float, float, float, float]:
    return obj.get_bounds() if hasattr(obj, "get_bounds") else obj.get_pos()


_ZH = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef\u201c\u201d\u2018\u2019"
_DOUBLED = re.compile(f"([{_ZH}]{{2,4}}?)\\1")
_ZH_CHAR = re.compile(f"[{_ZH}]")


def doubled_ratio(compact: str) -> float:
    """Share of characters inside an immediately repeated 2–4-character fragment.

    Some pdfium builds read an OCR layer that was laid over a scan twice with a shifted origin and
    interleave the copies: ``：“：“``, ``已经已经``, ``我问他问他``. Clean Chinese prose repeats
    such fragments rarely (研究研究, 看一看): the thesis and reports here stay under 0.01.
    """
    n = len(_ZH_CHAR.findall(compact))
    if n < 40:
        return 0.0
    return sum(len(m.group(0)) for m in _DOUBLED.finditer(compact)) / n


def _garbled(compact: str) -> bool:
    from curation.quality.scores import garbled_score

    return garbled_score(compact) > 0.05


def _apply_tables(pg: _Page, ppage, opts: PdfOptions) -> None:
    tables = ppage.find_tables()
    if not tables:
        return
    h = pg.height
    kept: list[Line] = []
    inserted: set[int] = set()
    boxes = [(t.bbox, t) for t in tables]
    for ln in pg.lines:
        cy = (ln.top + ln.bottom) / 2
        cx = (ln.left + ln.right) / 2
        hit = None
        for k, ((x0, top, x1, bottom), t) in enumerate(boxes):
            if x0 - 1 <= cx <= x1 + 1 and h - bottom - 1 <= cy <= h - top + 1:
                hit = k
                break
        if hit is None:
            kept.append(ln)
        elif opts.tables == "markdown" and hit not in inserted:
            inserted.add(hit)
            md = _table_md(boxes[hit][1].extract())
            if md:
                kept.append(Line(md, ln.left, ln.bottom, ln.left, ln.top))  # right=left: never joined
    pg.lines = kept


def _strip_headers_footers(pages: list[_Page], margin: float) -> int:
    cands: list[list[tuple[int, str]]] = []
    counts: Counter[str] = Counter()
    for pg in pages:
        top_band, bottom_band = pg.height * (1 - margin), pg.height * margin
        c = []
        for j, ln in enumerate(pg.lines):
            if ln.bottom >= top_band or ln.top <= bottom_band:
                # running headers sit at the same height on every page; a chapter heading that
                # repeats the header's words lower on its first page is content and stays
                c.append((j, f"{_header_key(ln.text)}@{round(ln.top / 4)}"))
        cands.append(c)
        counts.update({k for _, k in c})
    removed = 0
    multi = sum(1 for pg in pages if pg.lines) >= 2
    for pg, c in zip(pages, cands):
        drop = {j for j, k in c if _PAGE_NO.match(pg.lines[j].text.strip()) or (multi and counts[k] >= 2)}
        if drop:
            removed += len(drop)
            pg.lines = [ln for j, ln in enumerate(pg.lines) if j not in drop]
    return removed


def _join(pages: list[_Page], opts: PdfOptions) -> str:
    join = opts.join_lines
    out: list[str] = []
    buf = ""
    for pg in pages:
        if not pg.lines:
            continue
        right = max(ln.right for ln in pg.lines)
        for ln in pg.lines:
            t = ln.text.strip()
            if not t:
                continue
            if opts.drop_toc_lines and _TOC.search(t):
                continue
            if opts.drop_numeric_lines and not t.startswith("|") and not _HAS_LETTER.search(t):
                continue
            if buf:
                # ASCII word continuing on the next line needs a space; CJK never does
                sep = " " if (buf[-1].isascii() and buf[-1].isalnum() and t[0].isascii() and t[0].isalnum()) else ""
                buf = buf + sep + t
            else:
                buf = t
            full = ln.right >= right - 1.5 * ln.height and not t.startswith("|")
            if not (join and full and not t.endswith(_TERMINAL)):
                out.append(buf)
                buf = ""
    if buf:
        out.append(buf)
    return "\n".join(out)


_JUNK_TITLES = {"", "untitled", "unknown", "标准名称", "无标题", "microsoft word", "文档1", "document1"}
_PDF_DATE = re.compile(r"D:(\d{4})(\d{2})(\d{2})")


def _info(pdf) -> dict:
    """Title and date from the document information dictionary (author is left out: personal data)."""
    try:
        meta = pdf.get_metadata_dict()
    except Exception:
        return {}
    out = {}
    title = (meta.get("Title") or "").strip()
    if title.lower().removesuffix(".pdf") not in _JUNK_TITLES and not title.lower().startswith("microsoft word"):
        out["title"] = title.removesuffix(".pdf")
    for key in ("CreationDate", "ModDate"):
        m = _PDF_DATE.match(meta.get(key) or "")
        if m and m.group(1) > "1990":
            out["date"] = f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
            break
    return out


def extract_pdf(data: bytes, path: str, opts: PdfOptions | None = None) -> list[Extracted]:
    opts = opts or PdfOptions()
    if not data:
        raise ExtractError("empty_file", "zero bytes")
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
        n_pages = len(pdf)
    except Exception as e:
        raise ExtractError("pdf_unreadable", f"{type(e).__name__}: {e}") from None
    if n_pages == 0:
        raise ExtractError("pdf_unreadable", "no pages")
    info = _info(pdf)
    plumber_doc = None
    try:
        import logging

        import pdfplumber

        logging.getLogger("pdfminer").setLevel(logging.ERROR)  # font-descriptor chatter on CJK PDFs
        plumber_doc = pdfplumber.open(io.BytesIO(data))
    except Exception:
        plumber_doc = None  # pdfium could open it; pdfplumber is only the fallback/table engine
    t0 = time.monotonic()
    pages: list[_Page] = []
    truncated = None
    failed = 0
    try:
        for i in range(min(n_pages, opts.max_pages)):
            if time.monotonic() - t0 > opts.time_limit_s:
                truncated = "time_limit"
                break
            try:
                pages.append(_analyse_page(pdf, i, plumber_doc, opts))
            except Exception:
                failed += 1  # a damaged page (e.g. truncated file) is skipped, counted
                pages.append(_Page([], 0, 0, status="unreadable"))
        if n_pages > opts.max_pages and truncated is None:
            truncated = "max_pages"
    finally:
        if plumber_doc is not None:
            plumber_doc.close()
        pdf.close()
    status = Counter(p.status for p in pages)
    usable = [p for p in pages if p.status == "ok" or (p.status == "scanned" and opts.scanned_pages == "keep")]
    bad = status["unmapped"] + status["unreadable"]
    if not any(ln.text.strip() for p in usable for ln in p.lines):
        if truncated == "time_limit" and not pages:
            raise ExtractError("pdf_timeout", f"no page read within {opts.time_limit_s}s")
        order = ["garbage_layer", "scanned", "image_only", "unmapped", "unreadable"]
        worst = max(order, key=lambda s: (status[s], -order.index(s)))
        reason = {"garbage_layer": "pdf_garbage_text_layer", "scanned": "pdf_scanned_text_layer",
                  "image_only": "pdf_image_only", "unmapped": "pdf_unmapped_glyphs",
                  "unreadable": "pdf_unreadable"}[worst] if status[worst] else "pdf_no_text"
        raise ExtractError(reason, f"{len(pages)} pages: " + ", ".join(f"{k}={v}" for k, v in sorted(status.items())))
    if bad / len(pages) > opts.max_bad_page_frac:
        raise ExtractError("pdf_unmapped_glyphs", f"{bad}/{len(pages)} pages unreadable or without a glyph→Unicode map")
    removed = _strip_headers_footers(usable, opts.margin) if opts.remove_headers_footers else 0
    text = _join(usable, opts)
    md = {
        "extractor": "pypdfium2" if all(p.engine == "pdfium" for p in usable) else "pypdfium2+pdfplumber",
        "format": "pdf",
        "pdf.pages": n_pages,
        "pdf.pages_used": len(usable),
        "pdf.header_footer_lines": removed,
    }
    md.update(info)
    dropped = {k: v for k, v in status.items() if k != "ok" and not (k == "scanned" and opts.scanned_pages == "keep")}
    if dropped:
        md["pdf.pages_dropped"] = dict(dropped)
    if status["scanned"] and opts.scanned_pages == "keep":
        md["pdf.ocr_pages"] = status["scanned"]
    if truncated:
        md["pdf.truncated"] = truncated
    return [Extracted(text=text, metadata=md)]
