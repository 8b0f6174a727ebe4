"""Chunking as datatrove tasks on the shared executor gives the same chunks, ids and order as
in-process chunking (the Slurm and Ray runs are in tests/corpora_manifests/test_cluster_executors.py)."""
from __future__ import annotations

import json

from corpora_manifests.executor import ExecutorConfig
from synthesis.chunk_stage import chunk_on_executor
from synthesis.chunking import chunk_documents
from synthesis.config import ChunkConfig
from synthesis.sources import SourceDoc


def test_two_local_tasks_give_the_in_process_chunks(fixtures_dir, tmp_path, qwen_tokenizer):
    lines = (fixtures_dir / "laws" / "laws_sample.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    docs = [SourceDoc(doc_id=r["id"], text=r["text"], title=r.get("title", ""), group=f"d:{r['id']}")
            for r in map(json.loads, lines)]
    ref = list(chunk_documents(docs, qwen_tokenizer, 256, 40))
    cfg = ChunkConfig(max_tokens=256, executor=ExecutorConfig(kind="local", tasks=2, workers=1))
    got = chunk_on_executor(docs, cfg, tmp_path / "work")
    assert len(ref) > len(docs) and got == ref
    assert sorted(p.name for p in (tmp_path / "work" / "chunks").iterdir()) == ["00000.jsonl", "00001.jsonl"]
