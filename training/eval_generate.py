"""`soaes eval generate`: answers of a model to the prompts of an eval manifest, as predictions JSONL.

Each record is ``{"id", "prediction", "reference", "n_new_tokens"}``; ids come from the manifest, so
``score``/``compare`` match runs by id. The run is **resumable**: ids already in
``predictions.jsonl`` are skipped, every record is one ``write`` of a whole line on an ``O_APPEND``
descriptor followed by ``fsync``, and a torn last line (a crash mid-write) is cut off on restart.
``generate.json`` records the settings; resuming with different ones is refused (``--force`` restarts).

Backends: transformers batched generation with left padding (CPU or GPU), or vLLM when it is
importable and a GPU is present (``backend="auto"``).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from corpora_manifests.errors import UserError

PREDICTIONS = "predictions.jsonl"
RUN_FILE = "generate.json"


@dataclass(frozen=True)
class GenSettings:
    greedy: bool = True
    top_p: float | None = None
    temperature: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0

    def generate_kwargs(self) -> dict:
        if self.greedy:
            return {"do_sample": False, "top_p": None, "top_k": None, "temperature": None}
        return {"do_sample": True, "top_p": self.top_p, "top_k": None, "temperature": self.temperature}


@dataclass
class Prompt:
    id: str
    messages: list[dict]
    reference: str | None


def load_prompts(manifest_dir: Path, split: str | None) -> tuple[list[Prompt], list[dict]]:
    """Prompts (all messages before the last assistant reply) and references of an eval/SFT manifest.

    A record without a user turn before its last assistant reply is rejected with a reason.
    """
    from corpora_manifests.models import load_manifest
    from corpora_manifests.shards import iter_rows, verify_manifest

    manifest_dir = Path(manifest_dir)
    if not (manifest_dir / "manifest.json").exists():
        raise UserError(f"no manifest.json in {manifest_dir} (pass an eval manifest directory)")
    manifest = load_manifest(manifest_dir)
    if split and manifest.splits and split not in manifest.splits:
        raise UserError(f"split {split!r} not in {manifest_dir} (has: {', '.join(manifest.splits)})")
    if problems := verify_manifest(manifest_dir, manifest):
        raise UserError("eval manifest failed verification: " + "; ".join(map(str, problems)))
    use_split = split if manifest.splits else None
    prompts, rejected = [], []
    for row in iter_rows(manifest_dir, manifest, split=use_split, columns=["id", "messages"]):
        msgs = [{"role": m["role"], "content": m["content"]} for m in row["messages"] or []]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        context = msgs[:last] if last is not None else msgs
        if not any(m["role"] == "user" for m in context):
            rejected.append({"id": row["id"], "reason": "no_user_turn"})
            continue
        prompts.append(Prompt(str(row["id"]), context, msgs[last]["content"] if last is not None else None))
    return prompts, rejected


def load_model_and_tokenizer(model_dir: Path, dtype: str = "auto"):
    import torch
    from transformers import AutoModelForCausalLM

    from corpora_manifests.tokenizer import load_tokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise UserError(f"model directory {model_dir} has no config.json (nothing is downloaded at run time)")
    has_tok = any((model_dir / f).exists() for f in ("tokenizer.json", "tokenizer_config.json"))
    tok = load_tokenizer(str(model_dir) if has_tok else "qwen2.5")
    torch_dtype = torch.float32 if dtype == "auto" and not torch.cuda.is_available() else "auto"
    # A ZeRO-3 training run earlier in this process (the pipeline, the demo) leaves transformers'
    # global DeepSpeed config set: from_pretrained would then partition the weights (empty tensors).
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled, unset_hf_deepspeed_config

    if is_deepspeed_zero3_enabled():
        unset_hf_deepspeed_config()
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype, local_files_only=True)
    # Training saves use_cache=False (packing isolation) in config.json and generation_config.json;
    # generation wants the KV cache, and assisted generation refuses to run without one.
    model.config.use_cache = True
    model.generation_config.use_cache = True
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval(), tok


def stop_token_ids(tok) -> list[int]:
    ids = [tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    ids = [i for i in ids if isinstance(i, int) and i >= 0 and i != tok.unk_token_id]
    return ids or [tok.eos_token_id]


def render(tok, messages: list[dict]) -> str:
    return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


class PredictionsFile:
    """Append-only JSONL whose every record is one write; a torn last line is cut off on open."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.done: set[str] = set()
        if self.path.exists():
            self._repair_and_read()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _repair_and_read(self) -> None:
        from corpora_manifests.jsonl import iter_jsonl

        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            # Only a crash mid-append leaves a line without its newline: that record is redone.
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
        for _, rec, _problem in iter_jsonl(self.path):
            if rec is not None and "id" in rec:
                self.done.add(str(rec["id"]))

    def append(self, records: Iterable[dict]) -> None:
        for rec in records:
            os.write(self._fd, (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
            self.done.add(str(rec["id"]))
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def _check_or_write_run(out: Path, meta: dict, force: bool) -> None:
    run_file = out / RUN_FILE
    if force:
        for name in (PREDICTIONS, RUN_FILE):
            (out / name).unlink(missing_ok=True)
    elif run_file.exists():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        changed = sorted(k for k in meta if k != "backend" and old.get(k) != meta[k])
        if changed:
            raise UserError(f"{out} holds predictions made with other settings ({', '.join(changed)} differ); "
                            "use another --output or --force to start again")
        return
    tmp = run_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, run_file)


def generate_predictions(model_dir: Path, data: Path, output: Path, settings: GenSettings, *,
                         split: str | None = "test", batch_size: int = 8, backend: str = "auto",
                         force: bool = False, label: str | None = None, progress=None) -> dict:
    """Write ``output/predictions.jsonl`` for every prompt of ``data`` not yet answered; return a summary."""
    from corpora_manifests.shards import sha256_file

    if not settings.greedy and not (settings.top_p and 0 < settings.top_p <= 1):
        raise UserError("sampling needs --top-p in (0, 1]")
    prompts, rejected = load_prompts(Path(data), split)
    if not prompts:
        raise UserError(f"no prompts in {data} (split {split}; {len(rejected)} rejected)")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if backend == "auto":
        backend = "vllm" if _vllm_usable() else "transformers"
    meta = {"model": str(Path(model_dir).resolve()), "data": str(Path(data).resolve()), "split": split,
            "data_manifest_sha256": sha256_file(Path(data) / "manifest.json"), "settings": asdict(settings),
            "label": label or _default_label(Path(model_dir)), "backend": backend}
    _check_or_write_run(output, meta, force)
    preds = PredictionsFile(output / PREDICTIONS)
    todo = [p for p in prompts if p.id not in preds.done]
    skipped = len(prompts) - len(todo)
    try:
        if todo:
            run = _generate_vllm if backend == "vllm" else _generate_hf
            run(Path(model_dir), todo, preds, settings, batch_size, progress)
    finally:
        preds.close()
    if rejected:
        with open(output / "rejects.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rejected)
    return {"output": str(output / PREDICTIONS), "generated": len(todo), "skipped_existing": skipped,
            "rejected": len(rejected), "backend": backend, "label": meta["label"]}


def _default_label(model_dir: Path) -> str:
    # Training writes stages/NN-<name>/model: the stage name is the meaningful label.
    model_dir = model_dir.resolve()
    return model_dir.parent.name if model_dir.name in ("model", "final") else model_dir.name


def _vllm_usable() -> bool:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _generate_hf(model_dir, todo, preds, settings, batch_size, progress):
    import torch

    model, tok = load_model_and_tokenizer(model_dir)
    tok.padding_side = "left"  # decoder-only batches must end where generation starts
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    stops = stop_token_ids(tok)
    texts = {p.id: render(tok, p.messages) for p in todo}
    # Similar lengths together: less padding per batch. Output order does not matter (ids).
    order = sorted(todo, key=lambda p: len(texts[p.id]))
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        enc = tok([texts[p.id] for p in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        torch.manual_seed(settings.seed + start)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=settings.max_new_tokens, eos_token_id=stops,
                                 pad_token_id=tok.pad_token_id, **settings.generate_kwargs())
        new = out[:, enc["input_ids"].shape[1]:]
        records = []
        for p, ids in zip(batch, new.tolist()):
            ids = _cut_at_stop(ids, stops)
            records.append({"id": p.id, "prediction": tok.decode(ids, skip_special_tokens=True).strip(),
                            "reference": p.reference, "n_new_tokens": len(ids)})
        preds.append(records)
        if progress:
            progress(len(batch))


def _cut_at_stop(ids: list[int], stops: list[int]) -> list[int]:
    for i, t in enumerate(ids):
        if t in stops:
            return ids[:i]
    return ids


def _generate_vllm(model_dir, todo, preds, settings, batch_size, progress):  # pragma: no cover - GPU only
    from vllm import LLM, SamplingParams

    from corpora_manifests.tokenizer import load_tokenizer

    tok = load_tokenizer(str(model_dir))
    llm = LLM(model=str(model_dir), seed=settings.seed)
    params = SamplingParams(max_tokens=settings.max_new_tokens, seed=settings.seed, stop_token_ids=stop_token_ids(tok),
                            temperature=0.0 if settings.greedy else settings.temperature,
                            top_p=1.0 if settings.greedy else settings.top_p)
    chunk = max(batch_size, 64)  # vLLM batches internally; chunks bound the work lost to a crash
    for start in range(0, len(todo), chunk):
        batch = todo[start:start + chunk]
        outs = llm.generate([render(tok, p.messages) for p in batch], params)
        preds.append({"id": p.id, "prediction": o.outputs[0].text.strip(), "reference": p.reference,
                      "n_new_tokens": len(o.outputs[0].token_ids)} for p, o in zip(batch, outs))
        if progress:
            progress(len(batch))
