"""Decode bytes of web pages and text files: BOM → declared charset → strict UTF-8 → detection.

Chinese government pages are often GBK/GB18030 (declared as gb2312) or Big5. Declared GB2312/GBK
is decoded as GB18030 (a superset: pages declaring gb2312 routinely contain GBK-only characters);
Big5 as Big5-HKSCS for the same reason.
"""
from __future__ import annotations

import codecs
import re

_BOMS = [(codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]
_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.I)
_XML = re.compile(rb"""<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.-]+)""", re.I)
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "gb_2312-80": "gb18030",
              "euc-cn": "gb18030", "big5": "big5hkscs", "cp950": "big5hkscs", "x-big5": "big5hkscs",
              "iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "us-ascii": "utf-8", "ascii": "utf-8"}


def _norm(enc: str) -> str | None:
    enc = enc.strip().lower()
    enc = _SUPERSETS.get(enc, enc)
    try:
        return codecs.lookup(enc).name
    except LookupError:
        return None


def declared_charset(data: bytes) -> str | None:
    head = data[:8192]
    m = _META.search(head) or _XML.search(head)
    return _norm(m.group(1).decode("ascii", "ignore")) if m else None


def decode_bytes(data: bytes, html: bool = False) -> tuple[str, str]:
    """Return (text, how) where ``how`` names the encoding and the evidence (bom/meta/utf-8/detected)."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return data.decode(enc, errors="replace"), f"{enc}:bom"
    if html:
        enc = declared_charset(data)
        if enc and enc not in ("utf-8", "cp1252"):
            try:
                return data.decode(enc), f"{enc}:meta"
            except UnicodeDecodeError:
                pass  # a wrong declaration: fall through to content detection
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Not UTF-8: decode with each CJK candidate and keep the one that reads as real Chinese (fewest
    # characters outside GB2312 ∪ Big5 level 1). GB18030 decodes almost any bytes, so "decodes
    # without error" alone would pick it for Big5 pages too.
    from charset_normalizer import from_bytes

    from curation.quality.scores import garbled_score

    best = from_bytes(data[:200_000]).best()
    guess = _norm(best.encoding) if best is not None else None
    scored = []
    for cand in dict.fromkeys(["gb18030", "big5hkscs", guess]):
        if not cand:
            continue
        try:
            text = data.decode(cand)
        except UnicodeDecodeError:
            continue
        sample = "".join(text[:100_000].split())
        scored.append((garbled_score(sample), cand != "gb18030", cand, text))
    if scored:
        _, _, cand, text = min(scored)
        return text, f"{cand}:detected"
    return data.decode("gb18030", errors="replace"), "gb18030:lossy"
