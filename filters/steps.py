"""datatrove PipelineSteps of SFT stage 1, usable in your own datatrove scripts.

``InstructionReader`` → ``ChineseLanguageFilter`` → ``DomainFilter`` → ``InstructionDedupFilter``
→ ``DecontaminationFilter`` → ``SFTShardWriter``. A ``Document`` carries the dialogue text (user
and assistant turns, code removed) in ``text`` and the sample in metadata: ``messages``,
``source``, ``format``, plus namespaced results (``lang.*``, ``domain.*``, ``dedup.*``).
Filters return ``(keep, reason)``; give them a :class:`RejectsSink` as ``exclusion_writer`` and
every dropped sample lands in ``<out>/rejects/<step>-r<rank>.jsonl`` with its reason.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

from corpora_manifests.shard_step import ShardsStep

_META_PREFIXES = ("lang.", "domain.", "seed.", "dedup.", "decontam.")


def _first_user(doc: Document) -> str:
    for m in doc.metadata.get("messages") or []:
        if m.get("role") == "user":
            return m.get("content") or ""
    return doc.text


class RejectsSink:
    """An ``exclusion_writer`` for datatrove filters that writes through ``RejectsWriter``.

    One file per step and rank, truncated when the rank (re)starts so a resumed task never
    duplicates lines. Lines carry id, source, reason, the namespaced metadata and an excerpt.
    """

    def __init__(self, out_dir: str | Path, step: str, excerpt_chars: int = 300):
        self.out_dir = str(out_dir)
        self.step = step
        self.excerpt_chars = excerpt_chars
        self._w = None
        self._rank = None

    def __enter__(self) -> "RejectsSink":
        return self

    def __exit__(self, *exc) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None

    def _writer(self, rank: int):
        from corpora_manifests.rejects import RejectsWriter

        if self._w is None or self._rank != rank:
            name = f"{self.step}-r{rank:05d}"
            p = Path(self.out_dir) / "rejects" / f"{name}.jsonl"
            if p.exists():
                p.unlink()
            self._w = RejectsWriter(self.out_dir, name=name)
            self._rank = rank
        return self._w

    def write(self, doc: Document, rank: int = 0, **_: Any) -> None:
        md = doc.metadata
        self._writer(rank).reject(
            md.get("filter_reason") or f"{self.step}_dropped", id=str(doc.id), stage=self.step,
            path=md.get("path"), source=md.get("source"),
            detail=md.get("reject_detail"),
            excerpt=_first_user(doc)[: self.excerpt_chars],
            **{k: v for k, v in md.items() if k.startswith(_META_PREFIXES)},
        )

    def reject_malformed(self, rank: int, m, source: str | None = None) -> None:
        self._writer(rank).reject(m.reason, id=m.id, stage=self.step, path=m.path, detail=m.detail, source=source,
                                  excerpt=(m.raw or "")[: self.excerpt_chars])


class InstructionReader(PipelineStep):
    """Read instruction files (JSONL/JSON/parquet, any supported format) into Documents.

    Files are distributed over ranks (file i → rank i % world_size); malformed records go to
    ``rejects/read-r<rank>.jsonl`` with their reason.
    """

    name = "📖 instruction reader"
    type = "📖 - READER"

    def __init__(self, inputs: list[dict], rejects_dir: str | Path | None = None, limit: int = -1):
        super().__init__()
        self.inputs = inputs
        self.rejects_dir = str(rejects_dir) if rejects_dir else None
        self.limit = limit

    def files(self) -> list[tuple[Path, dict]]:
        from .readers import sample_files

        out = []
        for spec in self.inputs:
            for f in sample_files([spec["path"]]):
                out.append((f, spec))
        return out

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from .readers import Malformed, read_samples
        from .text import dialogue_text

        if data:
            yield from data
        sink = RejectsSink(self.rejects_dir, "read") if self.rejects_dir else None
        n = 0
        try:
            for i, (path, spec) in enumerate(self.files()):
                if i % world_size != rank:
                    continue
                if not path.exists():
                    m = Malformed(f"{path.name}:file", "missing_file", "input file does not exist", str(path))
                    self.stat_update("dropped_missing_file")
                    if sink:
                        sink.reject_malformed(rank, m, spec.get("source") or path.stem)
                    continue
                src = spec.get("source") or path.stem
                for s in read_samples(path, spec.get("format", "auto"), src):
                    if isinstance(s, Malformed):
                        self.stat_update("malformed", f"dropped_{s.reason}")
                        if sink:
                            sink.reject_malformed(rank, s, src)
                        continue
                    self.stat_update("documents")
                    md = {"messages": s.messages, "source": spec.get("source") or s.source or src,
                          "format": s.format, "path": str(path), **s.metadata}
                    yield Document(text=dialogue_text(s.messages), id=s.id, metadata=md)
                    n += 1
                    if 0 < self.limit <= n:
                        return
        finally:
            if sink:
                sink.__exit__()


class ChineseLanguageFilter(BaseFilter):
    """Keep Chinese samples (lid.176 + langdetect, code removed, mixed policy); writes ``lang.*``."""

    name = "🌐 language (zh)"

    def __init__(self, model: str | None = None, mixed_policy: str = "zh_majority", mixed_low: float = 0.2,
                 mixed_high: float = 0.8, second_opinion_below: float = 0.8, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.kw = dict(model_path=model, mixed_policy=mixed_policy, mixed_low=mixed_low, mixed_high=mixed_high,
                       second_opinion_below=second_opinion_below)
        self._lid = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._lid is None:
            from .langid import LanguageIdentifier

            self._lid = LanguageIdentifier(**self.kw)
        res = self._lid.identify(doc.metadata.get("messages") or [{"role": "user", "content": doc.text}])
        doc.metadata.update(res.metadata())
        self.stat_update(f"lang_{res.label}")
        return True if res.keep else (False, res.reason)


class DomainFilter(BaseFilter):
    """Keep in-domain samples: source category labels first, then the fastText classifier."""

    name = "🏛 domain"

    def __init__(self, model: str | None = None, threshold: float | None = None,
                 keep_domains: list[str] | None = None, keep_categories: list[str] | None = None,
                 exclude_categories: list[str] | None = None, keep_min_score: float = 0.0,
                 batch_size: int = 512, lexicon_min_hits: int = 1, exclusion_writer=None):
        super().__init__(exclusion_writer, batch_size=batch_size)
        self.model_path, self.threshold = model, threshold
        self.lexicon_min_hits = lexicon_min_hits
        self.keep_domains = set(keep_domains) if keep_domains else None
        self.cat_args = (keep_categories or [], exclude_categories or [], keep_min_score)
        self._model = None
        self._rule = None

    def _load(self) -> None:
        if self._model is None:
            from .categories import CategoryRule
            from .domain.model import DomainModel

            self._model = DomainModel(self.model_path, self.threshold)
            self._rule = CategoryRule(*self.cat_args)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        self._load()
        m = self._model
        from .domain.lexicon import lexicon_gate, request_text
        from .text import domain_text

        # the question decides (answers only when the question is too short to show a topic)
        texts = [domain_text(d.metadata["messages"]) if d.metadata.get("messages") else d.text for d in batch]
        domains, p_ins, is_ins = m.predict_arrays(m.lines(texts), texts)
        out = []
        for doc, dom, p_in, is_in in zip(batch, domains, p_ins.tolist(), is_ins.tolist()):
            clf_in = is_in and (self.keep_domains is None or dom in self.keep_domains or dom == "in")
            gate = None
            if clf_in and self.lexicon_min_hits > 0 and doc.metadata.get("messages"):
                # cascade stage 2: the request must name a domain concept and not be a general task
                gate = lexicon_gate(request_text(doc.metadata["messages"]), self.lexicon_min_hits)
                clf_in = gate is None
            dec = self._rule.decide(doc.metadata.get("domain.source_categories") or [], p_in, clf_in)
            doc.metadata.update({"domain.label": dom, "domain.p_in": round(p_in, 4),
                                 "domain.decided_by": dec.decided_by})
            if dec.matched:
                doc.metadata["domain.category_matched"] = dec.matched
            if gate and dec.decided_by == "classifier":
                dec.reason = gate
                doc.metadata["domain.gate"] = gate
            elif is_in and not clf_in and dec.decided_by == "classifier":
                dec.reason = "domain_not_selected"  # in-domain, but not one of keep_domains
            self.stat_update(f"domain_{doc.metadata['domain.label']}")
            out.append(True if dec.keep else (False, dec.reason))
        return out


class InstructionDedupFilter(BaseFilter):
    """Drop near-duplicates of the first user turn (datasketch MinHashLSH candidates, exact Jaccard verified)."""

    name = "🫂 instruction near-dedup"

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, ngram: int = 5, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.kw = dict(threshold=threshold, num_perm=num_perm, ngram=ngram)
        self._dd = None
        self._n = 0

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._dd is None:
            from .dedup import InstructionDeduplicator

            self._dd = InstructionDeduplicator(**self.kw)
        self._n += 1
        key = f"{doc.metadata.get('source')}/{doc.id}/{self._n}"
        before = self._dd.rejected_candidates
        dup = self._dd.check(key, _first_user(doc))
        if self._dd.rejected_candidates > before:
            self.stat_update("lsh_candidate_below_threshold")  # proposed by LSH, refuted by the exact Jaccard
        if dup is None:
            doc.metadata["dedup.key"] = key
            return True
        doc.metadata["dedup.duplicate_of"] = dup
        doc.metadata["dedup.jaccard"] = self._dd.last_jaccard
        return False, "near_duplicate"


class DecontaminationFilter(BaseFilter):
    """Drop samples sharing a long normalised character n-gram with an evaluation set."""

    name = "🧪 decontamination"

    def __init__(self, eval_sets: list[dict], ngram: int = 30, stride: int = 1, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.eval_sets, self.ngram, self.stride = eval_sets, ngram, stride
        self._index = None

    def _build(self):
        from corpora_manifests.errors import UserError

        from .decontam import NgramIndex, iter_eval_records

        index = NgramIndex(self.ngram, self.stride)
        for es in self.eval_sets:
            if not Path(es["path"]).exists():
                raise UserError(f"evaluation set {es['name']!r} not found: {es['path']}")
            index.add_records(iter_eval_records(es["path"]), es["name"])
        return index

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._index is None:
            self._index = self._build()
        msgs = doc.metadata.get("messages") or []
        text = "\n".join(m.get("content") or "" for m in msgs) or doc.text
        hit = self._index.find(text)
        if hit is None:
            return True
        doc.metadata.update({"decontam.eval_set": hit.eval_set, "decontam.eval_id": hit.eval_id,
                             "decontam.ngram": hit.ngram})
        return False, "contaminated"


class SFTShardWriter(ShardsStep):
    """Kept samples → SFT_SCHEMA rows with Qwen2.5 token counts, through the shared ``ShardsStep``.

    ``n_tokens`` is the sum of the token counts of the message contents (no chat-template tokens,
    so it does not depend on the template a trainer applies). Each rank writes
    ``data/part-r<rank>-NNNNN.parquet`` and the sidecar ``.parts/r<rank>.json`` with its shards and
    the language/domain/source distribution of what it kept (``kept``), which the run assembles
    into the manifest.
    """

    name = "💾 SFT shards"

    def __init__(self, output: str | Path, tokenizer: str = "qwen2.5", target_bytes: int = 512 << 20,
                 batch: int = 256):
        super().__init__(output, schema="sft", tokenizer=tokenizer, target_bytes=target_bytes, batch_size=batch)

    def rows(self, docs: list[Document], tok):
        from corpora_manifests.tokenizer import count_tokens

        contents = [[m["content"] for m in d.metadata["messages"]] for d in docs]
        counts = iter(count_tokens(tok, [c for cs in contents for c in cs]))
        for d, cs in zip(docs, contents):
            n_tok = sum(next(counts) for _ in cs)
            md = {k: v for k, v in d.metadata.items() if k.startswith(_META_PREFIXES)}
            md["format"] = d.metadata.get("format")
            self.stat_update("written")
            self.stat_update("n_tokens", value=n_tok)
            yield {"id": str(d.id), "messages": d.metadata["messages"], "source": d.metadata.get("source"),
                   "n_tokens": n_tok, "metadata": md}

    def reset(self) -> None:
        self._kept: dict[str, Counter] = {"lang": Counter(), "domain": Counter(), "source": Counter(),
                                          "decided_by": Counter()}

    def observe(self, d: Document) -> None:
        self._kept["lang"][str(d.metadata.get("lang.label", "unknown"))] += 1
        self._kept["domain"][str(d.metadata.get("domain.label", "unknown"))] += 1
        self._kept["source"][str(d.metadata.get("source"))] += 1
        self._kept["decided_by"][str(d.metadata.get("domain.decided_by", "none"))] += 1

    def summary(self) -> dict:
        return {"kept": {k: dict(v) for k, v in self._kept.items()}}
