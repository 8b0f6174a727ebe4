"""datatrove steps for users' own pipelines: structure-aware chunking of documents.

``ChunkDocuments`` turns each document into one document per chunk (``id`` = the stable chunk id,
metadata ``synth.doc_id``, ``synth.chunk_index``, ``synth.heading``, ``synth.n_tokens``), so a
curator can prepare synthesis inputs with any datatrove reader and executor (local, Slurm, Ray).
The stage-2 pipeline calls the same chunker directly: generation is API-bound and runs as one
async process per shard of documents.
"""
from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep


class ChunkDocuments(PipelineStep):
    name = "✂️ structure-aware chunks"
    type = "🔪 - SYNTH"

    def __init__(self, max_tokens: int = 1024, min_chars: int = 40, tokenizer: str = "qwen2.5",
                 group_key: str | None = "version_group"):
        super().__init__()
        self.max_tokens = max_tokens
        self.min_chars = min_chars
        self.tokenizer_name = tokenizer
        self.group_key = group_key

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from corpora_manifests.tokenizer import load_tokenizer

        from .chunking import chunk_document
        from .sources import SourceDoc

        tok = load_tokenizer(self.tokenizer_name)
        for doc in data:
            self.stat_update("documents")
            group = doc.metadata.get(self.group_key) if self.group_key else None
            src = SourceDoc(doc_id=str(doc.id), text=doc.text, title=str(doc.metadata.get("title") or ""),
                            group=f"g:{group}" if group else f"d:{doc.id}")
            chunks = chunk_document(src, tok, self.max_tokens, self.min_chars)
            if not chunks:
                self.stat_update("no_chunks")
            for ch in chunks:
                self.stat_update("chunks")
                md = {k: v for k, v in doc.metadata.items()}
                md.update({"synth.doc_id": ch.doc_id, "synth.doc_group": ch.group, "synth.chunk_index": ch.index,
                           "synth.heading": ch.heading, "synth.n_tokens": ch.n_tokens,
                           "synth.articles": [u.label for u in ch.articles]})
                yield Document(text=ch.text, id=ch.chunk_id, metadata=md)
