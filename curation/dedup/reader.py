"""Reader for `soaes curate dedup` inputs: JSONL (plain/gz/zst) and parquet records with id + text.

Unlike datatrove's JsonlReader, a bad line (invalid JSON, invalid UTF-8, no text) does not vanish
into a log: it is written to ``<out>/rejects/input/RANK.jsonl`` with a reason (the format of
``curation.rejects``), rewritten when the rank re-runs so a resumed run does not duplicate it.
"""
from __future__ import annotations

import json
from pathlib import Path

from datatrove.pipeline.readers.base import BaseDiskReader

from corpora_manifests.jsonl import iter_jsonl_lines, split_problem

PREVIEW = 200


class RecordsReader(BaseDiskReader):
    name = "📚 JSONL/parquet records"

    def __init__(self, data_folder: str, glob_pattern: str, output_dir: str, text_key: str = "text",
                 id_key: str = "id", source: str | None = None, tag: int = 0):
        super().__init__(data_folder, glob_pattern=glob_pattern, text_key=text_key, id_key=id_key,
                         default_metadata={"source": source} if source else None, recursive=True)
        self.output_dir = output_dir
        self.tag = tag  # several readers in one pipeline write separate reject files
        self._rejects = None

    def _reject(self, reason: str, path: str, line: int | None, detail: str, preview: str = "") -> None:
        rec = {"id": f"{path}#{line}" if line is not None else path, "path": path, "stage": "input",
               "reason": reason, "detail": detail[:300]}
        if preview:
            rec["preview"] = preview[:PREVIEW]
        self._rejects.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.stat_update(f"rejected_{reason}")

    def _doc(self, obj, path: str, li: int):
        if not isinstance(obj, dict):
            self._reject("not_an_object", path, li, f"a JSON {type(obj).__name__}, not an object")
            return None
        text = obj.get(self.text_key)
        if not isinstance(text, str) or not text.strip():
            self._reject("no_text", path, li, f"no non-empty string under {self.text_key!r}")
            return None
        return self.get_document_from_dict(dict(obj), path, li)

    def read_file(self, filepath: str):
        if filepath.endswith(".parquet"):
            yield from self._read_parquet(filepath)
            return
        with self.data_folder.open(filepath, "rb", compression="infer") as f:
            for li, obj, problem, raw in iter_jsonl_lines(f, objects_only=False, with_raw=True, start=0):
                if problem is not None:
                    reason, detail = split_problem(problem)
                    self._reject(reason, filepath, li, detail, raw)
                    continue
                doc = self._doc(obj, filepath, li)
                if doc is not None:
                    yield doc

    def _read_parquet(self, filepath: str):
        import pyarrow.parquet as pq

        try:
            with self.data_folder.open(filepath, "rb") as f:
                pf = pq.ParquetFile(f)
                li = 0
                for batch in pf.iter_batches(batch_size=1024):
                    for obj in batch.to_pylist():
                        if isinstance(obj.get("metadata"), str):
                            try:
                                obj["metadata"] = json.loads(obj["metadata"])
                            except json.JSONDecodeError:
                                obj["metadata"] = {"raw_metadata": obj["metadata"]}
                        doc = self._doc(obj, filepath, li)
                        li += 1
                        if doc is not None:
                            yield doc
        except Exception as e:  # a truncated or non-parquet file: reject the file, keep the run going
            self._reject("unreadable_parquet", filepath, None, f"{type(e).__name__}: {e}")

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        target = Path(self.output_dir) / "rejects" / "input" / f"{rank:05d}-{self.tag}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8") as self._rejects:
            yield from super().run(data, rank, world_size)
        if target.exists() and target.stat().st_size == 0:
            target.unlink()
