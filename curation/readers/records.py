"""JSONL / parquet dumps of already-extracted text: one document per record (text/id keys configurable).

A record that is not valid JSON, not UTF-8, or has no text is rejected on its own (with its line
number); the good records of the same file still go through. Dumps are streamed (a line or a
parquet batch at a time), so a file of any size is read in bounded memory; a record longer than
``max_record_bytes`` is skipped without being held (``record_too_large``).
"""
from __future__ import annotations

import io
import json
from typing import BinaryIO, Iterator

from corpora_manifests.jsonl import iter_jsonl_lines, split_problem
from curation.readers.base import Extracted, ExtractError

_META_SKIP = {"text", "id"}


def _record(obj: dict, text_key: str, id_key: str, where: str) -> Extracted:
    text = obj.get(text_key)
    if not isinstance(text, str) or not text.strip():
        raise ExtractError("record_no_text", f"{where}: no string under {text_key!r}")
    rid = obj.get(id_key)
    md = {k: v for k, v in obj.items() if k not in (text_key, id_key) and isinstance(v, (str, int, float, bool))}
    md.update({"extractor": "records"})
    return Extracted(text=text, metadata=md, id_suffix=str(rid) if rid not in (None, "") else where)


def _err(reason: str, detail: str, where: str) -> ExtractError:
    err = ExtractError(reason, detail)
    err.where = where
    return err


def iter_lines(f: BinaryIO, max_record_bytes: int, first_line: int = 0) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, line or None if longer than the limit, its length) for a binary stream; an
    over-long line is drained in 1 MB pieces, never held whole. ``first_line``: lines before the
    stream's start (a byte range of a larger file), so numbers are the file's."""
    i = first_line
    while True:
        line = f.readline(max_record_bytes + 1)
        if not line:
            return
        i += 1
        if len(line) > max_record_bytes and not line.endswith(b"\n"):
            n = len(line)
            while True:
                piece = f.readline(1 << 20)
                n += len(piece)
                if not piece or piece.endswith(b"\n"):
                    break
            yield i, None, n
        else:
            yield i, line, len(line)


def iter_jsonl_stream(f: BinaryIO, text_key: str, id_key: str, max_record_bytes: int = 256 << 20,
                      first_line: int = 0) -> Iterator[Extracted | ExtractError]:
    for i, raw, n in iter_lines(f, max_record_bytes, first_line):
        if raw is None:
            yield _err("record_too_large", f"line{i}: {n} bytes > {max_record_bytes}", f"line{i}")
            continue
        yield from _records(iter_jsonl_lines([raw], start=i), text_key, id_key)


def iter_jsonl(data: bytes, text_key: str, id_key: str) -> Iterator[Extracted | ExtractError]:
    """JSON lines held in memory (a small ``.json`` file that turned out to be JSONL)."""
    if not data.strip():
        yield ExtractError("empty_file", "zero bytes" if not data else "only whitespace")
        return
    yield from _records(iter_jsonl_lines(data.splitlines()), text_key, id_key)


def _records(parsed, text_key: str, id_key: str) -> Iterator[Extracted | ExtractError]:
    """``corpora_manifests.jsonl.iter_jsonl_lines`` output -> documents or per-line errors."""
    for i, obj, problem in parsed:
        where = f"line{i}"
        if problem is not None:
            reason, detail = split_problem(problem)
            reason = {"not_an_object": "not_object"}.get(reason, reason)
            yield _err(f"record_{reason}", where if reason == "not_object" else f"{where}: {detail}", where)
            continue
        try:
            yield _record(obj, text_key, id_key, where)
        except ExtractError as err:
            err.where = where
            yield err


def iter_json(data: bytes, text_key: str, id_key: str) -> Iterator[Extracted | ExtractError]:
    """A ``.json`` file: one object, or a list of objects; if it is neither, it is read as JSONL."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        yield from iter_jsonl(data, text_key, id_key)
        return
    objs = obj if isinstance(obj, list) else [obj]
    for i, o in enumerate(objs, 1):
        where = f"item{i}"
        if not isinstance(o, dict):
            err = ExtractError("record_not_object", where)
            err.where = where
            yield err
            continue
        try:
            yield _record(o, text_key, id_key, where)
        except ExtractError as err:
            err.where = where
            yield err


def iter_parquet(data: bytes | BinaryIO, text_key: str, id_key: str,
                 max_record_bytes: int = 256 << 20) -> Iterator[Extracted | ExtractError]:
    """Rows of a parquet file (bytes or a seekable file object), a batch at a time."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data)
    except Exception as e:
        yield ExtractError("parquet_unreadable", f"{type(e).__name__}: {e}")
        return
    if text_key not in pf.schema_arrow.names:
        yield ExtractError("parquet_no_text_column", f"no column {text_key!r}")
        return
    i = 0
    for batch in pf.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            i += 1
            where = f"row{i}"
            t = row.get(text_key)
            if isinstance(t, str) and len(t) * 4 > max_record_bytes and len(t.encode("utf-8")) > max_record_bytes:
                yield _err("record_too_large", f"{where}: text > {max_record_bytes} bytes", where)
                continue
            md = row.get("metadata")
            if isinstance(md, str):
                try:
                    md = json.loads(md)
                except json.JSONDecodeError:
                    md = None
            if isinstance(md, dict):
                row = {**{k: v for k, v in md.items()}, **{k: v for k, v in row.items() if k != "metadata"}}
            try:
                yield _record(row, text_key, id_key, where)
            except ExtractError as err:
                err.where = where
                yield err
