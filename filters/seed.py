"""Seed-guided selection (FineScope's idea): score a pool by similarity to a few hundred seed examples.

A user who has a few hundred examples of *their* target domain (e.g. SOAE governance Q&A) scores
every pool sample by how close it is to the seeds in a representation space, and keeps the
closest. Two spaces:

* ``char`` (default, no model): hashed character 2-3-gram TF vectors (scikit-learn; single characters are
  mostly function words and pull every text together —
  ``HashingVectorizer``, l2-normalised) of the question (``filters.text.domain_text``);
* ``hf``: mean-pooled last hidden states of a **local** transformers model directory (any
  ``AutoModel``; nothing is downloaded), l2-normalised.

Score = mean cosine similarity to the ``top_k`` most similar seeds (robust to one odd seed, and
unlike the centroid it keeps several sub-topics of the seed set apart). As datatrove steps it is
two combinable parts, NeMo-Curator style: ``SeedSimilarityScorer`` writes ``seed.score`` into the
metadata, ``ScoreThresholdFilter`` keeps samples with a metadata field ≥ a threshold — so the
same score can be thresholded, logged, or combined with ``domain.p_in``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from corpora_manifests.errors import UserError


def load_seeds(path: str | Path) -> list[str]:
    """Seed texts from a JSONL/JSON/parquet instruction file (any reader format) or a .txt (one per line)."""
    from .readers import Malformed, read_samples
    from .text import domain_text

    p = Path(path)
    if not p.exists():
        raise UserError(f"seed file not found: {p}")
    if p.suffix == ".txt":
        seeds = [l.strip() for l in p.open(encoding="utf-8") if l.strip()]
    else:
        seeds = [domain_text(s.messages) for s in read_samples(p) if not isinstance(s, Malformed)]
    seeds = [s for s in seeds if s.strip()]
    if not seeds:
        raise UserError(f"{p} holds no usable seed examples")
    return seeds


class SeedScorer:
    def __init__(self, seeds: list[str], mode: Literal["char", "hf"] = "char", model: str | Path | None = None,
                 top_k: int = 5, max_chars: int = 256, n_features: int = 2 ** 18, batch_size: int = 32):
        if not seeds:
            raise UserError("seed-guided selection needs at least one seed example")
        self.mode, self.top_k, self.max_chars = mode, max(1, min(top_k, len(seeds))), max_chars
        self.batch_size = batch_size
        if mode == "char":
            from sklearn.feature_extraction.text import HashingVectorizer

            self._vec = HashingVectorizer(analyzer="char", ngram_range=(2, 3), n_features=n_features,
                                          alternate_sign=False, norm="l2", lowercase=True)
        elif mode == "hf":
            if not model or not Path(model).is_dir():
                raise UserError(f"seed mode hf needs a local transformers model directory (got {model!r})")
            from transformers import AutoModel, AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(str(model))
            self._model = AutoModel.from_pretrained(str(model))
            self._model.eval()
        else:
            raise UserError(f"unknown seed mode {mode!r}: char | hf")
        self._seeds = self.embed(seeds)

    def embed(self, texts: list[str]):
        """Row-normalised embeddings (scipy sparse for char, numpy for hf)."""
        texts = [t[: self.max_chars] for t in texts]
        if self.mode == "char":
            return self._vec.transform(texts)
        import numpy as np
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                enc = self._tok(texts[i:i + self.batch_size], padding=True, truncation=True, max_length=256,
                                return_tensors="pt")
                h = self._model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                v = (h * m).sum(1) / m.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(v, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1))

    def score(self, texts: list[str]):
        """Mean cosine similarity of each text to its ``top_k`` nearest seeds (numpy array)."""
        import numpy as np

        if not texts:
            return np.zeros(0)
        e = self.embed(texts)
        sims = e @ self._seeds.T
        sims = sims.toarray() if hasattr(sims, "toarray") else np.asarray(sims)
        k = self.top_k
        top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
        return top.mean(axis=1)


# ------------------------------------------------------------------ datatrove steps

from datatrove.data import Document, DocumentsPipeline  # noqa: E402
from datatrove.pipeline.base import PipelineStep  # noqa: E402
from datatrove.pipeline.filters.base_filter import BaseFilter  # noqa: E402


class SeedSimilarityScorer(PipelineStep):
    """Writes ``seed.score`` (and ``seed.mode``) into each document's metadata; drops nothing."""

    name = "🌱 seed similarity"
    type = "📊 - SCORER"

    def __init__(self, seeds: str | Path | list[str], mode: str = "char", model: str | None = None, top_k: int = 5,
                 field: str = "seed.score", batch_size: int = 256):
        super().__init__()
        self.seeds, self.mode, self.model, self.top_k = seeds, mode, model, top_k
        self.field, self.batch_size = field, batch_size
        self._scorer = None

    def _load(self) -> SeedScorer:
        if self._scorer is None:
            seeds = self.seeds if isinstance(self.seeds, list) else load_seeds(self.seeds)
            self._scorer = SeedScorer(seeds, self.mode, self.model, self.top_k)
        return self._scorer

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from .text import domain_text

        if data is None:
            return
        scorer = self._load()
        batch: list[Document] = []

        def flush():
            texts = [domain_text(d.metadata["messages"]) if d.metadata.get("messages") else d.text for d in batch]
            for d, s in zip(batch, scorer.score(texts).tolist()):
                d.metadata[self.field] = round(float(s), 4)
                d.metadata["seed.mode"] = self.mode
                self.stat_update("scored")
            yield from batch
            batch.clear()

        for doc in data:
            batch.append(doc)
            if len(batch) >= self.batch_size:
                yield from flush()
        if batch:
            yield from flush()


class ScoreThresholdFilter(BaseFilter):
    """Keeps documents whose metadata ``field`` ≥ ``threshold`` (reason ``<field>_below``)."""

    name = "🎚 score threshold"

    def __init__(self, field: str = "seed.score", threshold: float = 0.3, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.field, self.threshold = field, threshold

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        v = doc.metadata.get(self.field)
        if v is None:
            return False, f"{self.field}_missing"
        return True if float(v) >= self.threshold else (False, f"{self.field}_below")


def score_file(pool: str | Path, seeds: str | Path, mode: str = "char", model: str | None = None,
               top_k: int = 5) -> list[dict[str, Any]]:
    """``{id, seed_score}`` for every sample of ``pool`` (what ``soaes filters seed-score`` prints)."""
    from .readers import Malformed, read_samples
    from .text import domain_text

    scorer = SeedScorer(load_seeds(seeds), mode, model, top_k)
    samples = [s for s in read_samples(pool) if not isinstance(s, Malformed)]
    scores = scorer.score([domain_text(s.messages) for s in samples])
    return [{"id": s.id, "seed_score": round(float(x), 4)} for s, x in zip(samples, scores.tolist())]


def dumps(rows: list[dict]) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
