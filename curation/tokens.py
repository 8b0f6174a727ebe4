"""Token counting as a datatrove step: ``metadata["n_tokens"]`` with the run's tokenizer (Qwen2.5).

Counts are batched through the tokenizer's Rust backend (``corpora_manifests.tokenizer.count_tokens``)
and carried in metadata, which the shard writer turns into the ``n_tokens`` column.
"""
from __future__ import annotations

from datatrove.pipeline.base import PipelineStep


class TokenCounter(PipelineStep):
    type = "🔢 - TOKENIZER"
    name = "🔢 token counter"

    def __init__(self, tokenizer: str = "qwen2.5", batch_size: int = 256, key: str = "n_tokens"):
        super().__init__()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.key = key

    def run(self, data, rank: int = 0, world_size: int = 1):
        from corpora_manifests.tokenizer import count_tokens, load_tokenizer

        tok = load_tokenizer(self.tokenizer)
        batch = []

        def emit(docs):
            with self.track_time(unit="batch"):
                counts = count_tokens(tok, [d.text for d in docs])
            for d, n in zip(docs, counts):
                d.metadata[self.key] = n
                self.stat_update("tokens", value=n)
            return docs

        for doc in data or ():
            batch.append(doc)
            if len(batch) >= self.batch_size:
                yield from emit(batch)
                batch = []
        if batch:
            yield from emit(batch)
