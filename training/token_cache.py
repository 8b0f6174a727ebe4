"""Tokenise one manifest once; cache the result on disk, keyed by what determines it.

The key is the sha256 of: the manifest file's hash and split, the tokenizer's fingerprint, the
sequence length, the run kind (cpt|sft), the CPT separator and this format's version. Any change
to the data, tokenizer or length gives a new key; nothing stale is ever reused. A cache entry is a
directory written under a temporary name and renamed when complete, so a killed run never leaves
a half-written entry that looks finished.

Entry layout: ``tokens.bin`` (raw int32, all documents concatenated, appended while tokenising and
memory-mapped when read), ``offsets.npy`` (int64, n+1 document boundaries), ``loss_mask.bin`` (raw
uint8, SFT only: 1 on assistant tokens) and ``meta.json`` (counts, rejects with reasons, the key's
inputs).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 3
_BATCH = 512


@dataclass
class TokenizedManifest:
    """A tokenised manifest (memory-mapped from the cache)."""

    key: str
    path: Path
    tokens: np.ndarray
    offsets: np.ndarray
    loss_mask: np.ndarray | None
    meta: dict[str, Any]

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def cache_key(content_key: str, tokenizer_fingerprint: str, seq_len: int, kind: str, separator: str) -> str:
    blob = json.dumps({"manifest": content_key, "tokenizer": tokenizer_fingerprint, "seq_len": seq_len,
                       "kind": kind, "separator": separator if kind == "cpt" else None,
                       "format": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _map(path: Path, dtype) -> np.ndarray:
    if path.stat().st_size == 0:  # an empty file cannot be memory-mapped
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


def _load(entry: Path, key: str) -> TokenizedManifest:
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    mask_path = entry / "loss_mask.bin"
    return TokenizedManifest(
        key=key, path=entry,
        tokens=_map(entry / "tokens.bin", np.int32),
        offsets=np.load(entry / "offsets.npy"),
        loss_mask=_map(mask_path, np.uint8) if mask_path.exists() else None,
        meta=meta,
    )


class _Sink:
    """Append documents to raw int32 (+ uint8 mask) files as they are tokenised: memory stays
    bounded by one batch however large the manifest (17 B tokens would not fit in RAM)."""

    def __init__(self, directory: Path, with_mask: bool):
        self._tokens = open(directory / "tokens.bin", "wb")
        self._mask = open(directory / "loss_mask.bin", "wb") if with_mask else None
        self.lengths: list[int] = []
        self.target_tokens = 0

    def append(self, ids: np.ndarray, mask: np.ndarray | None = None) -> None:
        self._tokens.write(np.ascontiguousarray(ids, dtype=np.int32).tobytes())
        if self._mask is not None:
            self._mask.write(np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
            self.target_tokens += int(mask.sum())
        self.lengths.append(len(ids))

    def close(self) -> np.ndarray:
        for f in (self._tokens, self._mask):
            if f is not None:
                f.flush()
                os.fsync(f.fileno())
                f.close()
        offsets = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=offsets[1:])
        return offsets


def tokenize_manifest(source, tokenizer, *, kind: str, seq_len: int, cache_dir: Path,
                      separator: str = "<|endoftext|>", progress: bool = True) -> TokenizedManifest:
    """Tokenise a ``ManifestInput`` (cached). Bad rows are kept in ``meta['rejects']`` with a reason."""
    from corpora_manifests.tokenizer import tokenizer_fingerprint

    key = cache_key(source.consumed.content_key, tokenizer_fingerprint(tokenizer), seq_len, kind, separator)
    entry = Path(cache_dir) / key
    if (entry / "meta.json").exists():
        return _load(entry, key)

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{key[:16]}.", suffix=".tmp"))
    try:
        sink = _Sink(tmp, with_mask=kind != "cpt")
        if kind == "cpt":
            meta = _tokenize_cpt(source, tokenizer, separator, progress, sink)
        else:
            meta = _tokenize_sft(source, tokenizer, seq_len, progress, sink)
        offsets = sink.close()
        np.save(tmp / "offsets.npy", offsets)
        meta.update(documents=len(offsets) - 1, tokens=int(offsets[-1]))
        if kind != "cpt":
            meta["target_tokens"] = sink.target_tokens
        meta.update(key=key, manifest=source.consumed.path, manifest_sha256=source.consumed.manifest_sha256,
                    split=source.consumed.split, tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
                    seq_len=seq_len, kind=kind, format=FORMAT_VERSION)
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        try:
            os.replace(tmp, entry)
        except OSError:  # another process finished the same entry first: theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _load(entry, key)


def _bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="rec", disable=not enabled, leave=False)


def _tokenize_cpt(source, tokenizer, separator: str, progress: bool, sink: _Sink) -> dict[str, Any]:
    from corpora_manifests.fast_tokens import encode_arrays

    sep_id = tokenizer.convert_tokens_to_ids(separator)
    if sep_id is None or sep_id == getattr(tokenizer, "unk_token_id", -1):
        from corpora_manifests.errors import UserError

        raise UserError(f"cpt_separator {separator!r} is not a token of the tokenizer")
    rejects: list[dict[str, Any]] = []
    batch_ids: list[str] = []
    batch_texts: list[str] = []

    def flush():
        if not batch_texts:
            return
        # tiktoken on the Qwen2.5 ranks when exact (corpora_manifests.fast_tokens), HF otherwise;
        # one process tokenises for all ranks, so it may use every core.
        for doc_ids in encode_arrays(tokenizer, batch_texts, threads=os.cpu_count()):
            ids = np.empty(len(doc_ids) + 1, dtype=np.int32)
            ids[:-1] = doc_ids
            ids[-1] = sep_id  # every document ends with the separator: the model learns where documents end
            sink.append(ids)
        batch_ids.clear()
        batch_texts.clear()

    with _bar(source.consumed.records, f"tokenize {source.consumed.name}", progress) as bar:
        for row in source.iter_rows(columns=["id", "text"]):
            bar.update(1)
            text = row.get("text")
            if not isinstance(text, str):
                rejects.append({"id": row.get("id"), "reason": "missing_text"})
            elif not text.strip():
                rejects.append({"id": row.get("id"), "reason": "empty_text"})
            else:
                batch_ids.append(row.get("id"))
                batch_texts.append(text)
                if len(batch_texts) >= _BATCH:
                    flush()
        flush()
    return {"rejects": rejects}


def _tokenize_sft(source, tokenizer, seq_len: int, progress: bool, sink: _Sink) -> dict[str, Any]:
    from .chat_template import BadSample, ChatEncoder, normalise_messages

    encoder = ChatEncoder(tokenizer)
    rejects: list[dict[str, Any]] = []
    pending: list[tuple[Any, list[dict[str, str]]]] = []

    split_count = 0

    def keep(enc) -> None:
        sink.append(enc.input_ids, enc.loss_mask)

    def flush():
        nonlocal split_count
        if not pending:
            return
        for (rid, msgs), enc in zip(pending, encoder.encode([m for _, m in pending])):
            if len(enc.input_ids) <= seq_len:
                keep(enc)
                continue
            # Too long: split at turn boundaries into conversations that fit (each keeps the system
            # prompt); never truncate, which would train on a cut-off reply. A single exchange that
            # alone exceeds seq_len is rejected whole.
            parts, dropped = split_conversation(msgs, lambda m: len(encoder.encode([m])[0].input_ids) <= seq_len)
            split_count += len(parts) > 1 or bool(dropped)
            for part in parts:
                keep(encoder.encode([part])[0])
            for tokens in dropped:
                rejects.append({"id": rid, "reason": "longer_than_seq_len",
                                "detail": f"an exchange of {tokens} tokens > seq_len {seq_len}", "tokens": tokens})
        pending.clear()

    def split_conversation(msgs, fits):
        system = msgs[:1] if msgs[0]["role"] == "system" else []
        groups, cur = [], []
        for m in msgs[len(system):]:
            cur.append(m)
            if m["role"] == "assistant":
                groups.append(cur)
                cur = []
        parts, dropped, part = [], [], []
        for g in groups:  # trailing user turns without a reply carry no loss and are left out
            if fits(system + part + g):
                part = part + g
                continue
            if part:
                parts.append(system + part)
            if fits(system + g):
                part = g
            else:
                part = []
                dropped.append(int(len(encoder.encode([system + g])[0].input_ids)))
        if part:
            parts.append(system + part)
        return parts, dropped

    with _bar(source.consumed.records, f"tokenize {source.consumed.name}", progress) as bar:
        for row in source.iter_rows(columns=["id", "messages"]):
            bar.update(1)
            try:
                pending.append((row.get("id"), normalise_messages(row.get("messages"))))
            except BadSample as e:
                rejects.append({"id": row.get("id"), "reason": str(e)})
                continue
            if len(pending) >= _BATCH:
                flush()
        flush()
    return {"split_conversations": split_count, "rejects": rejects}

