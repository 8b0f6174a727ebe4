"""Chunking as a datatrove stage on the shared executor (``chunking.executor``: local | slurm | ray).

Generation is API-bound and runs in the calling process; chunking is the CPU work of stage 2 that
scales out. With the default (local, one task) the pipeline chunks in-process; otherwise the
documents are written to ``<out>/chunk_work/docs.jsonl``, each task chunks documents ``i`` with
``i % tasks == rank`` into ``chunks/RANK.jsonl``, and the chunks are read back in document order —
the same chunks, ids and order as in-process chunking. On Slurm the call waits for the job array
(the rest of the run needs the chunks).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from corpora_manifests.jsonl import iter_jsonl_lines, records


class ChunkShard(PipelineStep):
    name = "✂️ chunk shard"
    type = "🔪 - SYNTH"

    def __init__(self, docs_path: str, out_dir: str, max_tokens: int, min_chars: int, tokenizer: str):
        super().__init__()
        self.docs_path, self.out_dir = docs_path, out_dir
        self.max_tokens, self.min_chars, self.tokenizer_name = max_tokens, min_chars, tokenizer

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from corpora_manifests.tokenizer import load_tokenizer

        from .chunking import chunk_document
        from .sources import SourceDoc

        tok = load_tokenizer(self.tokenizer_name)
        target = Path(self.out_dir) / f"{rank:05d}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(self.docs_path, encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as w:
            for i, doc, _ in iter_jsonl_lines(f, start=0):  # our own file: every line is a document
                if i % world_size != rank or doc is None:
                    continue
                self.stat_update("documents")
                for ch in chunk_document(SourceDoc(**doc), tok, self.max_tokens, self.min_chars):
                    w.write(json.dumps({"_doc": i, **dataclasses.asdict(ch)}, ensure_ascii=False) + "\n")
                    self.stat_update("chunks")
        os.replace(tmp, target)
        return iter(())


def chunk_on_executor(docs: list, chunking, work_dir: str | Path) -> list:
    """Chunks of ``docs`` computed by ``chunking.executor``'s tasks, in document order."""
    from corpora_manifests.executor import Stage, check_executor, run_stages, wait_for_stages

    from .chunking import Chunk, Unit

    ex = chunking.executor
    check_executor(ex)
    work = Path(work_dir)
    shutil.rmtree(work, ignore_errors=True)  # chunks always follow this run's documents and settings
    work.mkdir(parents=True)
    docs_path = work / "docs.jsonl"
    with open(docs_path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(dataclasses.asdict(d), ensure_ascii=False) + "\n")
    step = ChunkShard(str(docs_path), str(work / "chunks"), chunking.max_tokens, chunking.min_chars, chunking.tokenizer)
    if run_stages([Stage("chunk", [step], ex.n_tasks)], ex, work, work / "logs") is not None:
        wait_for_stages(work)  # Slurm: the rest of the run needs the chunks
    rows = []
    for p in sorted((work / "chunks").glob("*.jsonl")):
        rows += list(records(p))
    rows.sort(key=lambda r: (r["_doc"], r["index"]))
    return [Chunk(**{**{k: v for k, v in r.items() if k != "_doc"}, "units": [Unit(**u) for u in r["units"]]})
            for r in rows]
