"""JSONL / parquet dumps of already-extracted text: one document per record (text/id keys configurable).

A record that is not valid JSON, not UTF-8, or has no text is rejected on its own (with its line
number); the good records of the same file still go through.
"""
from __future__ import annotations

import io
import json
from typing import Iterator

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


def iter_jsonl(data: bytes, text_key: str, id_key: str) -> Iterator[Extracted | ExtractError]:
    if not data.strip():
        yield ExtractError("empty_file", "zero bytes" if not data else "only whitespace")
        return
    from corpora_manifests.jsonl import iter_jsonl_lines, split_problem

    for i, obj, problem in iter_jsonl_lines(data.splitlines()):
        where = f"line{i}"
        if problem is not None:
            reason, detail = split_problem(problem)
            reason = {"not_an_object": "not_object"}.get(reason, reason)
            err = ExtractError(f"record_{reason}", where if reason == "not_object" else f"{where}: {detail}")
            err.where = where
            yield err
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


def iter_parquet(data: bytes, text_key: str, id_key: str) -> Iterator[Extracted | ExtractError]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(io.BytesIO(data))
    except Exception as e:
        yield ExtractError("parquet_unreadable", f"{type(e).__name__}: {e}")
        return
    if text_key not in pf.schema_arrow.names:
        yield ExtractError("parquet_no_text_column", f"no column {text_key!r}")
        return
    i = 0
    for batch in pf.iter_batches(batch_size=2048):
        for row in batch.to_pylist():
            i += 1
            where = f"row{i}"
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
