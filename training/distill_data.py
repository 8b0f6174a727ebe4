"""A distillation stage's data: SFT samples packed exactly as SFT packs them, plus the teacher's
stored top-k at every supervised position, moved to the sample's place in the packed sequence.

Offline: a stage manifest is a ``distill_logits`` manifest. Its recorded source SFT manifests are
opened (their hashes must still match the capture's), tokenised with the capture's ``seq_len``
through the same token cache (the cache key must equal the recorded one, so the samples are the
ones the teacher saw) and packed best-fit with the training ``seq_len``. A sample's stored row is
checked against its tokens (count + sha256 prefix) when it is used.

Online (``distill.teacher``): the manifests are SFT manifests; the teacher runs in the trainer.

The collator returns the packed batch (``input_ids``, ``labels``, ``position_ids``: no attention
mask) plus ``kd_index`` (flat index b·L + j of every supervised position, row-major: the order of
``labels[:, 1:] != -100``), ``kd_ids``, ``kd_logp``, ``kd_tail``; when the capture stored tail
statistics at the stage's τ, also ``kd_tmass`` / ``kd_tnegent`` [N] and ``kd_smp`` [N, m].
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpora_manifests.errors import UserError

from .config import StageConfig, TrainConfig
from .manifest_inputs import ManifestInput, open_manifest
from .packing import PackedCollator, materialise, pack_best_fit
from .stage_data import StageData
from .token_cache import tokenize_manifest


@dataclass
class LogitsStore:
    """Rows of one distill_logits manifest, by (source index, sample index); shards read lazily."""

    directory: Path
    k: int
    encoding: str
    shard_of: dict[tuple[int, int], tuple[str, int]]
    tail: dict[str, Any] | None = None  # the capture's tail record (tau, samples), None: top-k only
    _cache: OrderedDict = field(default_factory=OrderedDict)
    max_cached_shards: int = 8

    def row(self, source: int, doc: int) -> dict[str, Any]:
        import pyarrow.parquet as pq

        try:
            path, r = self.shard_of[(source, doc)]
        except KeyError:
            raise UserError(f"{self.directory}: no stored logits for sample {doc} of source {source}") from None
        if path not in self._cache:
            self._cache[path] = pq.read_table(self.directory / path).to_pylist()
            if len(self._cache) > self.max_cached_shards:
                self._cache.popitem(last=False)
        self._cache.move_to_end(path)
        return self._cache[path][r]


def _open_logits(path: str, cfg: TrainConfig, tokenizer, progress: bool, stage: StageConfig):
    import pyarrow.parquet as pq

    from corpora_manifests.tokenizer import tokenizer_fingerprint

    logits_input = open_manifest(path, "distill", split=None)
    d = logits_input.manifest.stats.get("distill") or {}
    if d.get("tokenizer_fingerprint") != tokenizer_fingerprint(tokenizer):
        raise UserError(f"{path}: captured with a different tokenizer than this run's ({cfg.tokenizer})")
    if d["seq_len"] > cfg.seq_len:
        raise UserError(f"{path}: captured with seq_len {d['seq_len']} > this run's {cfg.seq_len}; "
                        "samples longer than the packed length cannot be trained on")
    sources, tokenized = [], []
    for rec in d["source_manifests"]:
        src = open_manifest(rec["path"], "sft", split=rec["split"])
        if src.consumed.manifest_sha256 != rec["manifest_sha256"]:
            raise UserError(f"{rec['path']} changed since the logits in {path} were captured (manifest hash differs)")
        tok = tokenize_manifest(src, tokenizer, kind="sft", seq_len=d["seq_len"], cache_dir=cfg.resolved_cache_dir(),
                                progress=progress)
        if tok.key != rec["token_cache_key"]:
            raise UserError(f"{path}: the samples of {rec['path']} tokenise differently than at capture")
        sources.append(src)
        tokenized.append(tok)
    shard_of = {}
    for s in logits_input.manifest.shards:
        mi = int(Path(s.path).name[1:3])
        for r, doc in enumerate(pq.read_table(logits_input.directory / s.path, columns=["doc_index"]).column(0).to_pylist()):
            shard_of[(mi, doc)] = (s.path, r)
    store = LogitsStore(logits_input.directory, int(d["k"]), d["encoding"], shard_of, tail=d.get("tail"))
    _check_tail(path, store.tail, stage)
    return logits_input, sources, tokenized, store


def _check_tail(path: str, tail: dict[str, Any] | None, stage: StageConfig) -> None:
    """The 'sampled' tail needs draws captured at the stage's own τ (one capture per τ of a grid)."""
    ds = stage.distill
    if ds.tail != "sampled":
        return
    if not tail or not tail.get("samples"):
        raise UserError(f"{path}: tail 'sampled' needs a capture with tail_tau and tail_samples > 0 "
                        "(this one stored the top-k only): capture again, or use tail: bucket")
    if not _tail_at(tail, ds.temperature):
        raise UserError(f"{path}: its tail draws are at tau {tail['tau']:g}, this stage's temperature is "
                        f"{ds.temperature:g}: capture at tail_tau {ds.temperature:g}, or use tail: bucket")


@dataclass
class KDStageData(StageData):
    stores: list[LogitsStore | None] = field(default_factory=list)  # per tokenized source (None online)
    logits_inputs: list[ManifestInput] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out["manifests"] = [i.consumed.to_dict() for i in self.logits_inputs] + out["manifests"]
        out["distill"] = {**self.stage.distill.model_dump(),
                          "mode": "online" if self.stage.distill.teacher else "offline",
                          "k": sorted({s.k for s in self.stores if s}) or None,
                          "encoding": sorted({s.encoding for s in self.stores if s}) or None,
                          "tail_mass": self.tail_mass()}
        return out

    def tail_mass(self) -> str | None:
        """How the teacher's τ-tail mass enters the loss: 'exact' (captured at this τ) or 'even-tail estimate'."""
        if self.stage.distill.teacher or self.stage.distill.tail == "renormalize":
            return None
        return "exact" if all(s and _tail_at(s.tail, self.stage.distill.temperature) for s in self.stores) \
            else "even-tail estimate"

    def dataset(self):
        return PackedKDDataset(self)


def build_kd_stage_data(cfg: TrainConfig, stage: StageConfig, tokenizer, progress: bool = True) -> KDStageData:
    inputs, tokenized, stores, logits_inputs = [], [], [], []
    if stage.distill.teacher:
        for m in stage.manifests:
            i = open_manifest(m, "sft", split=stage.split)
            inputs.append(i)
            tokenized.append(tokenize_manifest(i, tokenizer, kind="sft", seq_len=cfg.seq_len,
                                               cache_dir=cfg.resolved_cache_dir(), progress=progress))
            stores.append(None)
    else:
        for m in stage.manifests:
            li, srcs, toks, store = _open_logits(m, cfg, tokenizer, progress, stage)
            logits_inputs.append(li)
            for mi, (s, t) in enumerate(zip(srcs, toks)):
                inputs.append(s)
                tokenized.append(t)
                stores.append(_SourceView(store, mi))
    rejects = []
    for i, t in zip(inputs, tokenized):
        for r in t.meta.get("rejects", []):
            rejects.append({**r, "path": i.consumed.path, "stage": stage.name})
    plan = pack_best_fit([t.offsets for t in tokenized], cfg.seq_len)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return KDStageData(stage, inputs, tokenized, plan, int(pad_id), rejects, stores=stores, logits_inputs=logits_inputs)


def _tail_at(tail: dict[str, Any] | None, tau: float) -> bool:
    return bool(tail) and math.isclose(float(tail["tau"]), tau)


@dataclass
class _SourceView:
    """One source manifest's rows inside a LogitsStore."""

    store: LogitsStore
    source: int

    @property
    def k(self) -> int:
        return self.store.k

    @property
    def encoding(self) -> str:
        return self.store.encoding

    @property
    def tail(self) -> dict[str, Any] | None:
        return self.store.tail

    def row(self, doc: int) -> dict[str, Any]:
        return self.store.row(self.source, doc)


class PackedKDDataset:
    """Packed SFT sequences (as ``PackedDataset``) + the stored top-k at their supervised positions."""

    def __init__(self, data: KDStageData):
        self.plan = data.plan
        self.tokens = [t.tokens for t in data.tokenized]
        self.masks = [t.loss_mask for t in data.tokenized]
        self.offsets = [t.offsets for t in data.tokenized]
        self.stores = data.stores
        self.collator = KDCollator(data.pad_id)
        # tail statistics enter the batch only when every source has them at this τ (one layout per batch)
        self.with_tail = data.tail_mass() == "exact"

    def __len__(self) -> int:
        return self.plan.n_sequences

    def __getitem__(self, i: int):
        import torch

        from .distill_capture import supervised_positions, tokens_digest
        from .kd_encoding import decode, decode_tail

        if i < 0 or i >= len(self):
            raise IndexError(i)
        item = materialise(self.plan, i, self.tokens, self.masks)
        out = {k: torch.from_numpy(v) for k, v in item.items()}
        if all(s is None for s in self.stores):
            return out
        pos, ids, logp, tail, tails, fill = [], [], [], [], [], 0
        for seg in self.plan.segments_of(i):
            s, a, b = int(self.plan.src[seg]), int(self.plan.start[seg]), int(self.plan.end[seg])
            doc = int(np.searchsorted(self.offsets[s], a, side="right")) - 1
            row = self.stores[s].row(doc)
            toks = np.asarray(self.tokens[s][a:b])
            if row["n_tokens"] != b - a or row["tokens_sha256"] != tokens_digest(toks):
                raise UserError(f"stored logits of sample {doc} do not match its tokens (was the capture made "
                                "on these manifests?)")
            p = supervised_positions(self.masks[s][a:b])
            top = decode(row["ids"], row["vals"], row["aux"], self.stores[s].k, self.stores[s].encoding)
            if len(top) != len(p):
                raise UserError(f"stored logits of sample {doc}: {len(top)} positions, its loss mask has {len(p)}")
            if self.with_tail:
                t = self.stores[s].tail
                tails.append(decode_tail(row["tail"], len(p), int(t["samples"])))
            pos.append(fill + p)
            ids.append(top.ids)
            logp.append(top.logp)
            tail.append(top.tail)
            fill += b - a
        out["kd_pos"] = torch.from_numpy(np.concatenate(pos).astype(np.int64))
        out["kd_ids"] = torch.from_numpy(np.concatenate(ids).astype(np.int64))
        out["kd_logp"] = torch.from_numpy(np.concatenate(logp).astype(np.float32))
        out["kd_tail"] = torch.from_numpy(np.concatenate(tail).astype(np.float32))
        if self.with_tail:
            out["kd_tmass"] = torch.from_numpy(np.concatenate([t.log_mass for t in tails]).astype(np.float32))
            out["kd_tnegent"] = torch.from_numpy(np.concatenate([t.negent for t in tails]).astype(np.float32))
            out["kd_smp"] = torch.from_numpy(np.concatenate([t.samples for t in tails]).astype(np.int64))
        return out


class KDCollator(PackedCollator):
    """``PackedCollator`` + the top-k rows, flattened: ``kd_index[n] = b·L + j``."""

    def __call__(self, items: list[dict]) -> dict:
        import torch

        out = super().__call__([{k: it[k] for k in ("input_ids", "labels", "position_ids")} for it in items])
        if "kd_pos" not in items[0]:
            return out
        L = out["input_ids"].shape[1]
        out["kd_index"] = torch.cat([it["kd_pos"] + r * L for r, it in enumerate(items)])
        for k in ("kd_ids", "kd_logp", "kd_tail", "kd_tmass", "kd_tnegent", "kd_smp"):
            if k in items[0]:
                out[k] = torch.cat([it[k] for it in items])
        return out
