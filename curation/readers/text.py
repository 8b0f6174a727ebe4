"""Markdown / plain text files: decoded (BOM, UTF-8, else GB18030/Big5 detection), one document each."""
from __future__ import annotations

from curation.readers.base import Extracted, ExtractError
from curation.readers.encoding import decode_bytes


def extract_text(data: bytes, path: str, fmt: str = "text") -> list[Extracted]:
    if not data.strip():
        raise ExtractError("empty_file", "zero bytes" if not data else "only whitespace")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExtractError("binary_file", "NUL bytes in a text file")
    text, how = decode_bytes(data)
    md = {"extractor": fmt, "format": fmt, "encoding": how}
    if fmt == "markdown":
        for line in text.splitlines()[:20]:
            if line.startswith("# "):
                md["title"] = line[2:].strip()
                break
    return [Extracted(text=text, metadata=md)]
