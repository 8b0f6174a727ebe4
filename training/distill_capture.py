"""`soaes distill capture`: run a teacher over SFT manifests, store its top-k next-token
distribution at every supervised position, in parquet shards + a ``distill_logits`` manifest.

Alignment: samples are tokenised exactly as training tokenises them (``token_cache``, same
``seq_len``: long conversations split at the same turn boundaries). The logits at position j
predict token j+1, so position j is stored when token j+1 is an assistant (loss) token:
``positions = nonzero(loss_mask[1:])``. A row holds those positions of one sample in order.

Output (``output_dir``)::

    manifest.json        stage distill_logits; stats.distill pins teacher (path, config, weights
                         hash), tokenizer fingerprint, source manifests + hashes, k, encoding
    compression.json     the encoding, k, version, tolerances: next to the data it describes
    capture.json         the config hash this directory belongs to (written first)
    data/sMM-NNNNN.parquet   one shard per ``shard_samples`` samples of source manifest MM

Resumable: a shard is written to ``.tmp`` and renamed; a restart keeps finished shards and
recomputes only the rest. Every shard's samples and their forward batches are fixed by the config,
so a recomputed shard is byte-identical to the one an uninterrupted run writes (tested with SIGKILL).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from corpora_manifests.errors import UserError
from corpora_manifests.models import atomic_write_text

from . import kd_encoding

log = logging.getLogger(__name__)


class CaptureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    output_dir: str
    teacher: str = Field(description="local teacher model directory (config.json + weights)")
    tokenizer: str = "qwen2.5"
    manifests: list[str] = Field(min_length=1, description="SFT manifests (sft_stage1 / sft_stage2)")
    split: str | None = "train"
    seq_len: int = Field(8192, ge=16, description="as in the training config: conversations are split identically")
    k: int = Field(64, gt=0)
    encoding: Literal["delta_q8", "delta_q16", "fp16", "raw"] = "delta_q8"
    backend: Literal["transformers", "vllm"] = "transformers"
    batch_tokens: int = Field(8192, gt=0, description="tokens per teacher forward (samples packed, isolated)")
    shard_samples: int = Field(4096, gt=0, description="samples per shard (fixed: the unit of resumption)")
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    cache_dir: str | None = None
    compression_level: int = Field(3, ge=1, le=22)
    tail_tau: float | None = Field(
        2.0, gt=0, description="store the teacher's exact tail statistics at this temperature (the loss's tau) "
                               "for the 'bucket'/'sampled' tails; null: top-k only")
    tail_samples: int = Field(16, ge=0, le=256, description="draws from the teacher's tau-tail per position "
                                                            "('sampled' tail: unbiased tail term; ~2 B each)")
    seed: int = Field(0, description="seeds the tail draws (per forward pack: reruns are byte-identical)")


def load_capture_config(path, overrides: list[str] | None = None) -> tuple[CaptureConfig, str]:
    from corpora_manifests.config import load_config

    return load_config(path, CaptureConfig, overrides or [])


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def teacher_identity(path: str | Path) -> dict[str, Any]:
    """Teacher path + config + sha256 over its weight files (names and contents)."""
    from corpora_manifests.shards import sha256_file

    p = Path(path)
    if not (p / "config.json").exists():
        raise UserError(f"teacher {p} has no config.json (a local model directory is needed; nothing is downloaded)")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".safetensors", ".bin", ".pt", ".pth"))
    if not files:
        raise UserError(f"teacher {p} has no weight files (*.safetensors / *.bin)")
    entries = [{"name": f.name, "sha256": sha256_file(f), "bytes": f.stat().st_size} for f in files]
    return {"path": str(p.resolve()), "config": json.loads((p / "config.json").read_text()),
            "weights_sha256": _sha(entries), "files": entries}


SHARD_COLUMNS = ("doc_index", "n_tokens", "tokens_sha256", "n_positions", "ids", "vals", "aux", "tail")


def shard_schema():
    import pyarrow as pa

    return pa.schema([("doc_index", pa.int64()), ("n_tokens", pa.int32()), ("tokens_sha256", pa.string()),
                      ("n_positions", pa.int32()), ("ids", pa.binary()), ("vals", pa.binary()), ("aux", pa.binary()),
                      ("tail", pa.binary())])


def tokens_digest(ids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i4").tobytes()).hexdigest()[:16]


def supervised_positions(loss_mask: np.ndarray) -> np.ndarray:
    """Positions j whose logits predict a loss token: token j+1 is an assistant token."""
    return np.nonzero(np.asarray(loss_mask[1:]))[0]


class _TransformersTeacher:
    def __init__(self, cfg: CaptureConfig, n_real: int):
        import torch
        from transformers import AutoModelForCausalLM

        from .deepspeed_config import has_cuda

        self.device = "cuda" if has_cuda() else "cpu"
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and self.device == "cuda"
                                           and torch.cuda.is_bf16_supported())
        attn = cfg.attn_implementation
        if attn == "auto":
            attn = "sdpa"
        if attn == "flash_attention_2" and self.device != "cuda":
            raise UserError("attn_implementation flash_attention_2 needs a GPU")
        self.model = AutoModelForCausalLM.from_pretrained(cfg.teacher, dtype=torch.bfloat16 if bf16 else torch.float32,
                                                          attn_implementation=attn, local_files_only=True)
        self.model.config.use_cache = False  # packed samples are isolated by position ids only without a cache
        self.model.to(self.device).eval()
        self.base = getattr(self.model, self.model.base_model_prefix)
        self.head = self.model.get_output_embeddings()
        self.n_real = n_real
        self.k = cfg.k
        self.tail_tau = cfg.tail_tau
        self.m = cfg.tail_samples

    def topk(self, docs: list[np.ndarray], positions: list[np.ndarray], seed: int = 0):
        """One packed forward over ``docs``; top-k (ids, logp, tail) at each doc's positions, and
        with ``tail_tau`` the tail statistics + draws (``kd_loss.tail_statistics``) as a 4th item."""
        import torch

        from .kd_loss import tail_statistics, topk_of_logprobs

        ids = torch.from_numpy(np.concatenate(docs).astype(np.int64))[None].to(self.device)
        pos = torch.from_numpy(np.concatenate([np.arange(len(d)) for d in docs]))[None].to(self.device)
        offs = np.cumsum([0] + [len(d) for d in docs])
        flat = torch.from_numpy(np.concatenate([o + p for o, p in zip(offs[:-1], positions)])).to(self.device)
        out = []
        gen = torch.Generator().manual_seed(seed)
        chunk = 1024 if self.tail_tau is None else 256  # the tail statistics hold [chunk, vocab] thrice
        with torch.inference_mode():
            hidden = self.base(input_ids=ids, position_ids=pos, use_cache=False).last_hidden_state[0]
            for c in range(0, len(flat), chunk):  # never materialise [tokens, vocab] at once
                lp = torch.log_softmax(self.head(hidden[flat[c:c + chunk]])[..., :self.n_real].float(), dim=-1).cpu()
                top = topk_of_logprobs(lp, self.k)
                if self.tail_tau is not None:
                    top = (*top, tail_statistics(lp, top[0], self.tail_tau, self.m, gen))
                del lp
                out.append(top)
        n_items = 3 if self.tail_tau is None else 4
        if not out:
            empty = [np.zeros((0, self.k), np.int64)] * 3
            return empty if n_items == 3 else empty + [kd_encoding.Tail(np.zeros(0, np.float32), np.zeros(0, np.float32),
                                                                      np.zeros((0, self.m), np.int64))]
        res = [torch.cat([o[i] for o in out]).numpy() for i in range(3)]
        if n_items == 4:
            res.append(kd_encoding.Tail(*(torch.cat([o[3][j] for o in out]).numpy() for j in range(3))))
        return res


class _VllmTeacher:
    """vLLM prompt log-probs (GPU). Not exercised by the CPU test suite: vLLM is GPU-only.

    vLLM's ``prompt_logprobs[i]`` is the distribution *of token i* (given tokens < i), i.e. what our
    position i-1 predicts; it holds the top k plus the actual token, so the k best are kept. vLLM
    does not return the tail, which is 1 - Σ exp(top k) since its log-probs are normalised.
    """

    def __init__(self, cfg: CaptureConfig, n_real: int):
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise UserError("backend vllm needs the vllm package (GPU); use backend: transformers") from None
        self.llm = LLM(model=cfg.teacher, tokenizer=cfg.teacher, max_model_len=cfg.seq_len, max_logprobs=cfg.k + 1)
        self.params = SamplingParams(max_tokens=1, prompt_logprobs=cfg.k)
        self.k = cfg.k

    def topk(self, docs, positions, seed: int = 0):
        outs = self.llm.generate([{"prompt_token_ids": d.tolist()} for d in docs], self.params, use_tqdm=False)
        ids, logp = [], []
        for o, p in zip(outs, positions):
            for j in p.tolist():
                best = sorted(o.prompt_logprobs[j + 1].items(), key=lambda kv: -kv[1].logprob)[: self.k]
                ids.append([t for t, _ in best])
                logp.append([lp.logprob for _, lp in best])
        ids_a = np.asarray(ids, dtype=np.int64).reshape(-1, self.k)
        logp_a = np.asarray(logp, dtype=np.float32).reshape(-1, self.k)
        tail = np.clip(1.0 - np.exp(logp_a.astype(np.float64)).sum(1), 0.0, 1.0).astype(np.float32)
        return ids_a, logp_a, tail


def _packs(lengths: list[int], budget: int) -> list[list[int]]:
    """Consecutive samples grouped into forwards of at most ``budget`` tokens (a longer one alone)."""
    packs, cur, fill = [], [], 0
    for i, n in enumerate(lengths):
        if cur and fill + n > budget:
            packs.append(cur)
            cur, fill = [], 0
        cur.append(i)
        fill += n
    if cur:
        packs.append(cur)
    return packs


def _write_shard(path: Path, rows: list[dict[str, Any]], level: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    table = pa.Table.from_pylist(rows, schema=shard_schema())
    pq.write_table(table, tmp, compression="zstd", compression_level=level, use_dictionary=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _shard_rows(path: Path) -> tuple[int, int]:
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["n_positions"])
    return t.num_rows, int(sum(t.column("n_positions").to_pylist()))


def tail_record(cfg: CaptureConfig) -> dict[str, Any] | None:
    if cfg.tail_tau is None:
        return None
    return {"tau": cfg.tail_tau, "samples": cfg.tail_samples, "seed": cfg.seed, "draws": "systematic",
            "layout": "float32 log tau-tail mass, float32 tail-conditional negentropy per position; then "
                      "per position the draws ascending, LEB128 gaps (training/kd_encoding.py)"}


def compression_record(cfg: CaptureConfig) -> dict[str, Any]:
    return {"encoding": cfg.encoding, "k": cfg.k, "encoding_version": kd_encoding.ENCODING_VERSION,
            "tolerance": kd_encoding.TOLERANCE[cfg.encoding], "tail": tail_record(cfg),
            "columns": {"ids": "see training/kd_encoding.py", "vals": cfg.encoding, "aux": cfg.encoding,
                        "tail": "tail statistics + draws, or null"},
            "logprobs": "temperature 1, normalised over the tokenizer's real ids",
            "alignment": "row = one tokenised sample; positions j with loss_mask[j+1] == 1, in order; "
                         "the distribution at j is the teacher's for token j+1"}


def run_capture(cfg: CaptureConfig, *, config_text: str | None = None, command: str | None = None,
                force: bool = False, progress: bool = True) -> Path:
    from corpora_manifests.models import Manifest, Shard, Source, load_manifest
    from corpora_manifests.provenance import make_provenance
    from corpora_manifests.shards import sha256_file
    from corpora_manifests.tokenizer import TokenizerNotFound, load_tokenizer, tokenizer_fingerprint, tokenizer_info

    from .manifest_inputs import open_manifest
    from .token_cache import tokenize_manifest

    out = Path(cfg.output_dir)
    dump = cfg.model_dump(mode="json")
    # where caches live and how shards are compressed on disk do not change what is captured
    key = _sha({k: v for k, v in dump.items() if k not in ("cache_dir", "output_dir")})
    marker = out / "capture.json"
    if marker.exists() and json.loads(marker.read_text()).get("config_key") != key:
        if not force:
            raise UserError(f"{out} holds a capture of a different config; use a new output_dir or --force")
        import shutil

        shutil.rmtree(out)
    if (out / "manifest.json").exists() and marker.exists():
        log.info("%s is already finished: nothing to do", out)
        return out
    try:
        tokenizer = load_tokenizer(cfg.tokenizer)
    except TokenizerNotFound as e:
        raise UserError(str(e)) from None
    teacher_id = teacher_identity(cfg.teacher)
    n_real = len(tokenizer)
    vocab = int(teacher_id["config"].get("vocab_size", n_real))
    if vocab < n_real:
        raise UserError(f"teacher vocabulary ({vocab}) is smaller than the tokenizer's ({n_real})")
    if cfg.k > n_real:
        raise UserError(f"k={cfg.k} exceeds the tokenizer's {n_real} ids")
    if cfg.backend == "vllm" and cfg.tail_tau is not None:
        raise UserError("backend vllm returns only the top-k log-probs: set tail_tau: null (top-k + bucket "
                        "tail) or use backend transformers for the tail statistics")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, json.dumps({"config_key": key, "config": dump}, indent=2))
    atomic_write_text(out / "compression.json", json.dumps(compression_record(cfg), indent=2))

    inputs = [open_manifest(m, "sft", split=cfg.split) for m in cfg.manifests]
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else Path(
        os.environ.get("SOAES_CACHE", Path.home() / ".cache" / "soaes")) / "training"
    tokenized = [tokenize_manifest(i, tokenizer, kind="sft", seq_len=cfg.seq_len, cache_dir=cache_dir,
                                   progress=progress) for i in inputs]
    teacher = None
    shards, sources, kept, computed = [], [], 0, {"tokens": 0, "positions": 0, "seconds": 0.0, "shards": 0}
    for mi, (inp, tok) in enumerate(zip(inputs, tokenized)):
        n_docs = tok.n_docs
        src_positions = 0
        for si, lo in enumerate(range(0, n_docs, cfg.shard_samples)):
            hi = min(lo + cfg.shard_samples, n_docs)
            rel = f"data/s{mi:02d}-{si:05d}.parquet"
            path = out / rel
            if path.exists():
                kept += 1
            else:
                if teacher is None:
                    teacher = (_VllmTeacher if cfg.backend == "vllm" else _TransformersTeacher)(cfg, n_real)
                t0 = time.perf_counter()
                rows, n_tok = _capture_docs(teacher, tok, lo, hi, cfg, mi)
                _write_shard(path, rows, cfg.compression_level)
                computed["seconds"] += time.perf_counter() - t0
                computed["tokens"] += n_tok
                computed["positions"] += sum(r["n_positions"] for r in rows)
                computed["shards"] += 1
                if progress:
                    log.info("shard %s: %d samples", rel, len(rows))
            records, positions = _shard_rows(path)
            src_positions += positions
            shards.append(Shard(path=rel, sha256=sha256_file(path), bytes=path.stat().st_size,
                                records=records, tokens=positions))
        sources.append(Source(name=inp.manifest.name, uri=inp.consumed.path,
                              counts={"samples": n_docs, "positions": src_positions,
                                      "rejected": len(tok.meta.get("rejects", []))}))
    secs = computed["seconds"]
    throughput = {**computed, "kept_shards": kept,
                  "tokens_per_s": computed["tokens"] / secs if secs else None,
                  "positions_per_s": computed["positions"] / secs if secs else None}
    manifest = Manifest(
        name=cfg.name, stage="distill_logits",
        producer=make_provenance(dump, config_text, command),
        tokenizer=tokenizer_info(tokenizer), sources=sources, shards=shards,
        stats={"distill": {
            "k": cfg.k, "encoding": cfg.encoding, "compression": compression_record(cfg), "tail": tail_record(cfg),
            "teacher": teacher_id, "backend": cfg.backend, "seq_len": cfg.seq_len,
            "vocab": {"tokenizer_ids": n_real, "teacher_rows": vocab},
            "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
            "source_manifests": [{**i.consumed.to_dict(), "token_cache_key": t.key} for i, t in zip(inputs, tokenized)],
            "positions": sum(s.tokens for s in shards),
            "bytes_per_position": (sum(s.bytes for s in shards) / max(sum(s.tokens for s in shards), 1)),
            "throughput": throughput,
        }},
    )
    manifest.write(out)
    load_manifest(out)  # what was written validates
    return out


def _capture_docs(teacher, tok, lo: int, hi: int, cfg: CaptureConfig, source: int = 0) -> tuple[list[dict[str, Any]], int]:
    docs = [np.asarray(tok.tokens[tok.offsets[d]:tok.offsets[d + 1]], dtype=np.int64) for d in range(lo, hi)]
    masks = [np.asarray(tok.loss_mask[tok.offsets[d]:tok.offsets[d + 1]]) for d in range(lo, hi)]
    positions = [supervised_positions(m) for m in masks]
    rows = []
    for pack in _packs([len(d) for d in docs], cfg.batch_tokens):
        # the draws' seed names the pack (config seed, source, first sample): a recomputed shard redraws the same
        seed = int(_sha([cfg.seed, source, lo + pack[0]])[:15], 16)
        got = teacher.topk([docs[i] for i in pack], [positions[i] for i in pack], seed=seed)
        ids, logp, tail = got[:3]
        tails = got[3] if len(got) > 3 else None
        at = 0
        for i in pack:
            n = len(positions[i])
            t = kd_encoding.TopK(ids[at:at + n], logp[at:at + n], tail[at:at + n])
            b_ids, b_vals, b_aux = kd_encoding.encode(t, cfg.encoding)
            b_tail = None
            if tails is not None:
                b_tail = kd_encoding.encode_tail(kd_encoding.Tail(tails.log_mass[at:at + n], tails.negent[at:at + n],
                                                                  tails.samples[at:at + n]))
            at += n
            rows.append({"doc_index": lo + i, "n_tokens": len(docs[i]), "tokens_sha256": tokens_digest(docs[i]),
                         "n_positions": n, "ids": b_ids, "vals": b_vals, "aux": b_aux, "tail": b_tail})
    return rows, int(sum(len(d) for d in docs))
