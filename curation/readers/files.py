"""``DocumentReader``: one datatrove reader for directories, globs and fsspec paths of mixed formats.

Files are listed (sorted, deterministic) and split across ranks as datatrove does
(``units[rank::world_size]``), except that a large plain JSON-lines file is several units, one per
byte range (``byte_ranges``), so one big dump does not land on one task. Each file is sniffed, dispatched by format, extracted under a time
limit, and either yields documents or is written to ``<out>/rejects/read/`` with a reason:

- ``empty_file``, ``wrong_extension`` (content says PDF/ZIP/HTML/binary but the name says otherwise),
  ``unsupported_format``, ``<format>_unreadable``, ``pdf_*`` (image-only, garbage text layer,
  unmapped glyphs), ``extract_timeout``, ``extract_error`` (anything unexpected, with its type) …
- a dump's bad records are rejected one by one (``record_invalid_json``, ``record_too_large`` …) and
  its good ones kept; dumps are streamed, so their size never matters; a one-document file larger
  than ``max_document_bytes`` is ``document_too_large``.

Nothing that was listed vanishes: it becomes ≥ 1 document or ≥ 1 reject line.
"""
from __future__ import annotations

import glob as _glob
import io
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Literal

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from curation.readers.base import Extracted, ExtractError
from curation.readers.html import HtmlOptions
from curation.readers.pdf import PdfOptions

FORMATS = {
    ".html": "html", ".htm": "html", ".shtml": "html", ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".md": "markdown", ".markdown": "markdown",
    ".txt": "text", ".text": "text",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".parquet": "parquet",
}


_COMPRESSED = {".gz", ".bz2", ".xz", ".zst", ".lz4"}
_RECORD_FORMATS = ("jsonl", "json", "parquet")  # dumps: streamed record by record


class _Prefixed(io.RawIOBase):
    """A stream that replays the bytes already read for sniffing, then continues with the file."""

    def __init__(self, head: bytes, f):
        self._head, self._f = memoryview(head), f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if len(self._head):
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._f.read(len(b))
        b[:len(data)] = data
        return len(data)


class ReaderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text_key: str = "text"
    id_key: str = "id"
    recursive: bool = True
    time_limit_s: float = Field(300.0, gt=0, description="hard limit per one-document file (HTML, PDF, …)")
    # Memory is guarded per document, not per file: dumps (JSONL/parquet) are streamed whatever their
    # size, and only a single record or a one-document file larger than this is refused.
    max_document_bytes: int = Field(256 * 1024 * 1024, gt=0,
                                    validation_alias=AliasChoices("max_document_bytes", "max_file_bytes"),
                                    description="largest record of a dump / largest one-document file")
    split_bytes: int = Field(16 * 1024 * 1024, gt=0,
                             description="a plain .jsonl/.ndjson larger than this is read by several tasks, "
                                         "each a byte range (ids unchanged); smaller files go whole to one task")
    html: HtmlOptions = HtmlOptions()
    pdf: PdfOptions = PdfOptions()
    docx_tables: Literal["markdown", "drop"] = "markdown"


def list_input_files(inputs: list[str], recursive: bool = True) -> list[str]:
    """Expand directories, globs and fsspec URLs into a sorted list of file paths/URLs."""
    from fsspec.core import url_to_fs

    out: list[str] = []
    for inp in inputs:
        fs, root = url_to_fs(inp)
        remote = "://" in inp
        if _glob.has_magic(inp):
            found = [p for p in fs.glob(root) if fs.isfile(p)]
        elif fs.isdir(root):
            found = fs.find(root, maxdepth=None if recursive else 1)
        elif fs.exists(root):
            found = [root]
        else:
            found = []
        out.extend(fs.unstrip_protocol(p) if remote else os.path.normpath(p) for p in found)
    return sorted(dict.fromkeys(p for p in out if not PurePosixPath(p).name.startswith(".")))


def sniff(head: bytes) -> str | None:
    """What the bytes say the file is (None: text or unknown)."""
    if head.startswith(b"%PDF") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"PAR1"):
        return "parquet"
    low = head[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<meta", b"<body")):
        return "html"
    if head[:3] in (b"\x1f\x8b\x08",) or head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        return "binary"
    return None


def _mismatch(fmt: str, sniffed: str | None) -> bool:
    if sniffed is None:
        return fmt in ("pdf", "docx", "parquet")  # these must announce themselves
    expected = {"pdf": "pdf", "docx": "zip", "parquet": "parquet"}.get(fmt)
    if expected:
        return sniffed != expected
    # text-like formats: a PDF/ZIP/binary body is the wrong extension; HTML in .txt is tolerated
    return sniffed in ("pdf", "zip", "parquet", "binary")


class _Timeout(BaseException):
    """BaseException, not Exception: libraries (trafilatura …) swallow ``except Exception`` and would
    silently carry on past the deadline."""


@contextmanager
def _time_limit(seconds: float):
    """Raise ``_Timeout`` in this thread after ``seconds``, and again every 0.1 s until left.

    The repeats matter: an exception raised while Python runs a ``__del__`` or a library's bare
    ``except:`` is lost, and one lost alarm must not let a hanging file run forever. Yields a dict
    whose ``fired`` flag tells the caller the deadline passed even if every raise was swallowed.
    """
    state = {"fired": False}
    # SIGALRM works only in a main thread (datatrove's local and slurm tasks run there); elsewhere the
    # PDF extractor's own per-page time check still bounds the work.
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield state
        return

    def _raise(signum, frame):
        state["fired"] = True
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.1)
    try:
        yield state
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def extract_file(data: bytes, path: str, fmt: str, opts: ReaderOptions):
    """Yield ``Extracted`` or ``ExtractError`` items for one file (errors of single records included)."""
    if fmt == "html":
        from curation.readers.html import extract_html

        yield from extract_html(data, path, opts.html)
    elif fmt == "pdf":
        from curation.readers.pdf import extract_pdf

        yield from extract_pdf(data, path, opts.pdf)
    elif fmt == "docx":
        from curation.readers.office import extract_docx

        yield from extract_docx(data, path, opts.docx_tables)
    elif fmt in ("markdown", "text"):
        from curation.readers.text import extract_text

        yield from extract_text(data, path, fmt)
    elif fmt == "jsonl":
        from curation.readers.records import iter_jsonl

        yield from iter_jsonl(data, opts.text_key, opts.id_key)
    elif fmt == "json":
        from curation.readers.records import iter_json

        yield from iter_json(data, opts.text_key, opts.id_key)
    elif fmt == "parquet":
        from curation.readers.records import iter_parquet

        yield from iter_parquet(data, opts.text_key, opts.id_key)
    else:
        raise ExtractError("unsupported_format", f"no reader for {fmt!r}")


class DocumentReader(BaseReader):
    """datatrove reader over mixed inputs; unreadable files/records go to ``rejects_dir`` (see module doc).

    Metadata of each document: ``file_path``, ``format``, ``extractor``, ``title``/``date`` when
    known, ``source`` (``source`` argument), plus per-format keys (``pdf.pages`` …).
    """

    name = "📂 documents"

    def __init__(self, inputs: list[str] | str, options: ReaderOptions | dict | None = None,
                 rejects_dir: str | None = None, source: str | None = None, limit: int = -1):
        super().__init__(limit=limit)
        self.inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        self.options = ReaderOptions.model_validate(options or {})
        self.rejects_dir = rejects_dir
        self.source = source

    def _input_root(self) -> str | None:
        """The common directory of the local inputs: ids and ``file_path`` are relative to it, so the
        same inputs give the same shard bytes wherever the data (or the clone) lives."""
        if not hasattr(self, "_root_cache"):
            import re

            bases = []
            for i in self.inputs:
                if "://" in i:
                    continue
                base = os.path.abspath(re.split(r"[*?\[]", i)[0] or ".")
                bases.append(base if os.path.isdir(base) else os.path.dirname(base))
            self._root_cache = os.path.commonpath(bases) if bases else None
        return self._root_cache

    def _rel(self, path: str) -> str:
        root = self._input_root()
        if root is None or "://" in path:
            return path
        full = os.path.abspath(path)
        if full == root or not full.startswith(root.rstrip(os.sep) + os.sep):
            return path
        return PurePosixPath(*os.path.relpath(full, root).split(os.sep)).as_posix()

    def _doc_id(self, path: str, suffix: str | None) -> str:
        rel = self._rel(path)
        return f"{rel}#{suffix}" if suffix else rel

    def read_path(self, path: str, rank: int = 0, rejects=None, part: tuple[int, int, int] | None = None):
        """Documents of one file (or of its byte range ``part`` = (index, start, end), see
        ``byte_ranges``); problems are written to ``rejects`` (or only counted)."""
        from fsspec.core import url_to_fs

        def reject(reason: str, detail: str = "", suffix: str | None = None) -> None:
            self.stat_update("rejected", f"rejected_{reason}")
            if rejects is not None:
                from curation.rejects import reject_document

                reject_document(rejects, rank, id=self._doc_id(path, suffix), path=self._rel(path), reason=reason,
                                detail=detail)

        pp = PurePosixPath(path)
        suffix = pp.suffix.lower()
        if suffix in _COMPRESSED and len(pp.suffixes) > 1:  # dump.jsonl.gz, page.html.bz2: fsspec decompresses
            suffix = pp.suffixes[-2].lower()
        fmt = FORMATS.get(suffix)
        if fmt in _RECORD_FORMATS:
            yield from self._read_dump(path, fmt, reject, part)
            return
        limit = self.options.max_document_bytes
        try:
            fs, p = url_to_fs(path)
            size = fs.size(p)
            if fmt is None:
                reject("unsupported_format", f"extension {suffix or '(none)'}")
                return
            if size is not None and size > limit:
                reject("document_too_large", f"{size} bytes > {limit} (readers.max_document_bytes)")
                return
            with fs.open(p, "rb", compression="infer") as f:
                data = f.read(limit + 1)
        except Exception as e:
            reject("unreadable_file", f"{type(e).__name__}: {e}")
            return
        if len(data) > limit:  # compressed: only the decompressed size tells
            reject("document_too_large", f"> {limit} bytes decompressed (readers.max_document_bytes)")
            return
        if not data.strip():
            reject("empty_file", "zero bytes" if not data else "only whitespace")
            return
        sniffed = sniff(data[:4096])
        if _mismatch(fmt, sniffed):
            reject("wrong_extension", f"named {fmt} but content looks like {sniffed or 'text/unknown bytes'}")
            return
        n = 0
        t0 = time.monotonic()
        try:
            # materialised under the hard time limit, so the limit never counts downstream work
            with _time_limit(self.options.time_limit_s) as deadline:
                items = list(extract_file(data, path, fmt, self.options))
            if deadline["fired"]:  # every alarm was swallowed by library code: still over the limit
                raise _Timeout()
            for item in items:
                if isinstance(item, ExtractError):
                    reject(item.reason, item.detail, getattr(item, "where", None))
                    continue
                n += 1
                yield self._to_document(path, fmt, item)
        except _Timeout:
            reject("extract_timeout", f"> {self.options.time_limit_s}s")
            return
        except ExtractError as e:
            reject(e.reason, e.detail)
            return
        except Exception as e:  # a library bug on one file must not kill the run
            reject("extract_error", f"{type(e).__name__}: {e}")
            return
        finally:
            self.stat_update("extract_seconds", value=int(time.monotonic() - t0))
        if n == 0:
            reject("empty_after_extraction", "no text")

    def _read_dump(self, path: str, fmt: str, reject, part: tuple[int, int, int] | None = None):
        """Records of a JSONL/JSON/parquet dump, streamed: memory is bounded by one record (or one
        parquet batch), whatever the file's size. Bad records are rejected one by one. A byte range
        ``part`` other than the first reports nothing about the file as a whole (the first does)."""
        from fsspec.core import url_to_fs

        from curation.readers.byte_ranges import open_range
        from curation.readers.records import iter_json, iter_jsonl_stream, iter_parquet

        if part is not None and part[0] > 0:
            file_reject = reject

            def reject(reason: str, detail: str = "", suffix: str | None = None) -> None:
                if suffix is not None:  # a record of this range; whole-file verdicts are part 0's
                    file_reject(reason, detail, suffix)

        opts, limit = self.options, self.options.max_document_bytes
        items = 0
        t0 = time.monotonic()
        try:
            fs, p = url_to_fs(path)
            size = fs.size(p)
            # parquet needs random access: opened as is (no transparent decompression)
            with fs.open(p, "rb", compression=None if fmt == "parquet" else "infer") as f:
                head = f.read(4096)
                if len(head) < 4096 and not head.strip():
                    reject("empty_file", "zero bytes" if not head else "only whitespace")
                    return
                sniffed = sniff(head)
                if _mismatch(fmt, sniffed):
                    reject("wrong_extension", f"named {fmt} but content looks like {sniffed or 'text/unknown bytes'}")
                    return
                if fmt == "parquet":
                    f.seek(0)
                    records = iter_parquet(f, opts.text_key, opts.id_key, limit)
                elif fmt == "json" and size is not None and size <= limit:
                    # one object or an array: parsed whole (bounded by the per-document limit)
                    data = head + f.read(limit + 1 - len(head))
                    if len(data) > limit:
                        reject("document_too_large", f"> {limit} bytes decompressed: write large dumps as JSON lines")
                        return
                    records = iter_json(data, opts.text_key, opts.id_key)
                elif part is not None:  # one byte range of a large plain JSON-lines file
                    opened = open_range(f, part[1], part[2])
                    if opened is None:
                        return
                    stream, before = opened
                    records = iter_jsonl_stream(stream, opts.text_key, opts.id_key, limit, first_line=before)
                else:  # JSON lines (a .json too large to be one document is read as JSON lines)
                    stream = io.BufferedReader(_Prefixed(head, f), buffer_size=1 << 20)
                    records = iter_jsonl_stream(stream, opts.text_key, opts.id_key, limit)
                for item in records:
                    items += 1
                    if isinstance(item, ExtractError):
                        reject(item.reason, item.detail, getattr(item, "where", None))
                        continue
                    yield self._to_document(path, fmt, item)
        except ExtractError as e:
            reject(e.reason, e.detail)
            return
        except Exception as e:  # a broken stream (truncated .gz …) rejects the rest of the file, not the run
            reject("unreadable_file" if items == 0 else "extract_error", f"{type(e).__name__}: {e}")
            return
        finally:
            self.stat_update("extract_seconds", value=int(time.monotonic() - t0))
        if items == 0 and (part is None or part[0] == 0):
            reject("empty_file", "no records")

    def _units(self, files: list[str], world_size: int) -> list[tuple[str, tuple[int, int, int] | None]]:
        """Work units: whole files, and byte ranges of large plain JSON-lines files (``byte_ranges``)."""
        from fsspec.core import url_to_fs

        from curation.readers.byte_ranges import SPLITTABLE, plan_units

        sized = []
        for path in files:
            size = None
            if world_size > 1 and path.lower().endswith(SPLITTABLE):  # only those can be split: stat only those
                try:
                    fs, p = url_to_fs(path)
                    size = fs.size(p)
                except Exception:  # unreadable: read_path rejects it with the reason
                    size = None
            sized.append((path, size))
        return plan_units(sized, world_size, self.options.split_bytes)

    def _to_document(self, path: str, fmt: str, item: Extracted) -> Document:
        md = dict(item.metadata)
        md.setdefault("format", fmt)
        md["file_path"] = self._rel(path)  # relative to the inputs' common directory (reproducible)
        if self.source:
            md.setdefault("source", self.source)
        self.stat_update("documents")
        return Document(text=item.text, id=self._doc_id(path, item.id_suffix), metadata=md)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        units = self._units(list_input_files(self.inputs, self.options.recursive), world_size)[rank::world_size]
        rejects = None
        if self.rejects_dir:
            from curation.rejects import rejects_writer

            rejects = rejects_writer(self.rejects_dir, "read")
        try:
            n = 0
            for path, part in units:
                if part is None or part[0] == 0:
                    self.stat_update("input_files")
                for doc in self.read_path(path, rank, rejects, part):
                    if self.limit != -1 and n >= self.limit:
                        return
                    n += 1
                    self.update_doc_stats(doc)
                    yield doc
        finally:
            if rejects is not None:
                rejects.close()
