"""`soaes eval specbench`: the target decoding alone vs draft-model speculative decoding vs prompt lookup.

transformers' assisted generation, batch size 1 (its only supported size). The draft length is set
on the draft's generation config (``num_assistant_tokens = n``, schedule ``constant``,
``assistant_confidence_threshold = 0``, so every round drafts exactly n tokens unless the length
limit cuts it). transformers does not report acceptance, so the candidate generator the target
builds is instrumented: ``get_candidates`` gives each round's drafted tokens and
``update_candidate_strategy`` the tokens committed; accepted = the leading drafted tokens the target
committed. (transformers' own ``num_matches`` counts a drafted stop token as the target's bonus token,
so a perfect draft scored < 100 % on every answer that ends; drafts cut off unverified by a stop
token or the length budget are not counted as drafted.)

Figures (stated in every output):
- acceptance rate = accepted draft tokens / drafted tokens, over all rounds;
- mean accepted length = accepted draft tokens per verification round (the bonus token excluded);
  tokens per round = new tokens / verification rounds (the bonus token included);
- tokens/s = new tokens / wall seconds of ``generate`` summed over prompts (one warm-up first);
- speedup = tokens/s of the method / tokens/s of the target alone, same decoding mode.

Trust checks: a **self-draft** run (draft = target, greedy) must accept 100 % of its drafts, and
every greedy speculative output must equal the target's own greedy output token for token;
otherwise the result is flagged untrustworthy (exit 1).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFINITIONS = [
    "acceptance rate = accepted draft tokens / drafted tokens (all verification rounds; a drafted stop token "
    "the target agrees with is accepted, drafts after it are not counted)",
    "mean accepted length = accepted draft tokens per verification round (bonus token excluded); "
    "tokens/round includes it",
    "tokens/s = new tokens / wall-clock seconds of generate (batch size 1, one warm-up call first)",
    "speedup = tokens/s of the method / tokens/s of the target decoding alone in the same mode",
]


@dataclass
class Counts:
    drafted: int = 0
    accepted: int = 0
    rounds: int = 0

    def add(self, other: "Counts") -> None:
        self.drafted += other.drafted
        self.accepted += other.accepted
        self.rounds += other.rounds


@dataclass
class MethodResult:
    mode: str
    method: str
    n: int | None
    prompts: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    counts: Counts = field(default_factory=Counts)
    outputs: list[list[int]] = field(default_factory=list, repr=False)

    def row(self, base_tps: float | None, same_as_target: int | None) -> dict:
        tps = self.new_tokens / self.seconds if self.seconds else 0.0
        c = self.counts
        return {
            "mode": self.mode, "method": self.method, "n": self.n, "prompts": self.prompts,
            "new_tokens": self.new_tokens, "seconds": round(self.seconds, 4), "tokens_per_s": round(tps, 3),
            "speedup": round(tps / base_tps, 4) if base_tps else None,
            "rounds": c.rounds if self.method != "target" else None,
            "drafted": c.drafted if self.method != "target" else None,
            "accepted": c.accepted if self.method != "target" else None,
            "acceptance_rate": round(c.accepted / c.drafted, 4) if c.drafted else None,
            "mean_accepted_length": round(c.accepted / c.rounds, 4) if c.rounds else None,
            "tokens_per_round": round(self.new_tokens / c.rounds, 4) if c.rounds else None,
            "outputs_equal_target": same_as_target,
        }


def instrument(model, counts: Counts):
    """Count drafted/accepted tokens of every assisted/prompt-lookup ``generate`` call of ``model``.

    Wraps the model's own ``_get_candidate_generator`` (instance attribute: no global patch) so the
    candidate generator it builds reports each round to ``counts``. Returns an undo function.
    """
    original = model._get_candidate_generator

    def wrapped(*args, **kwargs):
        gen = original(*args, **kwargs)
        get_candidates, update = gen.get_candidates, gen.update_candidate_strategy
        state = {"start": 0, "drafted": []}

        def counting_get_candidates(input_ids, *a, **kw):
            cand, logits = get_candidates(input_ids, *a, **kw)
            state["start"], state["drafted"] = input_ids.shape[1], cand[0, input_ids.shape[1]:].tolist()
            return cand, logits

        def counting_update(input_ids, scores, num_matches):
            # input_ids: the sequence after this round's tokens were committed. transformers' own
            # num_matches counts a drafted stop token the target agreed with as the target's bonus
            # token (its EOS/length crop), so a draft that is always right scored < 100 % on every
            # answer that ends; compare the drafted tokens with the committed ones instead.
            drafted, committed = state["drafted"], input_ids[0, state["start"]:].tolist()
            agreed = 0
            for d, c in zip(drafted, committed):
                if d != c:
                    break
                agreed += 1
            # a round cut by a stop token / the length budget ends on an agreed draft token: the drafts
            # after the cut were never verified, so they are not counted as drafted
            counts.rounds += 1
            counts.drafted += agreed if agreed == len(committed) else len(drafted)
            counts.accepted += agreed
            return update(input_ids, scores, num_matches)

        gen.get_candidates = counting_get_candidates
        gen.update_candidate_strategy = counting_update
        return gen

    model._get_candidate_generator = wrapped
    return lambda: delattr(model, "_get_candidate_generator")


def _configure_draft(draft, n: int) -> None:
    gc = draft.generation_config
    gc.num_assistant_tokens = n
    gc.num_assistant_tokens_schedule = "constant"
    gc.assistant_confidence_threshold = 0.0


def run_method(target, draft, prompts, *, method: str, n: int | None, mode: str, top_p: float | None,
               max_new_tokens: int, stops: list[int], pad_id: int, seed: int = 0,
               suppress: list[int] | None = None) -> MethodResult:
    import torch

    res = MethodResult(mode=mode, method=method, n=n)
    kwargs = dict(max_new_tokens=max_new_tokens, eos_token_id=stops, pad_token_id=pad_id)
    if suppress:
        kwargs["suppress_tokens"] = suppress
    kwargs |= ({"do_sample": False, "top_p": None, "top_k": None, "temperature": None} if top_p is None
               else {"do_sample": True, "top_p": top_p, "top_k": None, "temperature": 1.0})
    if method in ("draft", "self-draft"):
        _configure_draft(draft, n)
        kwargs["assistant_model"] = draft
    elif method == "prompt-lookup":
        kwargs["prompt_lookup_num_tokens"] = n
    undo = instrument(target, res.counts)
    try:
        with torch.inference_mode():
            target.generate(prompts[0], **{**kwargs, "max_new_tokens": min(8, max_new_tokens)})  # warm-up
            res.counts.__init__()
            for i, ids in enumerate(prompts):
                torch.manual_seed(seed + i)
                t0 = time.perf_counter()
                out = target.generate(ids, **kwargs)
                res.seconds += time.perf_counter() - t0
                new = out[0, ids.shape[1]:].tolist()
                res.outputs.append(new)
                res.new_tokens += len(new)
                res.prompts += 1
    finally:
        undo()
    return res


@dataclass
class SpecbenchSettings:
    ns: tuple[int, ...] = (3, 5)
    modes: tuple[str, ...] = ("greedy", "top-p")
    top_p: float = 0.7
    max_new_tokens: int = 128
    limit: int | None = 20
    seed: int = 0
    self_check: bool = True


def match_vocabularies(target, tok, draft, draft_tok) -> list[int] | None:
    """Same tokenizer, different padded embedding rows (Qwen2.5-72B: 152,064; 7B: 151,936 — the paper's
    pair): the smaller model's embeddings are padded in memory to the larger row count, and every
    padding id (>= the tokenizer's length) is suppressed in both models' next-token scores, so neither
    can propose or accept one and the new rows' values never matter. Returns those ids (None when the
    row counts already agree)."""
    from corpora_manifests.errors import UserError
    from corpora_manifests.tokenizer import tokenizer_fingerprint

    if len(draft_tok) != len(tok) or tokenizer_fingerprint(draft_tok) != tokenizer_fingerprint(tok):
        raise UserError("draft and target must share the tokenizer for assisted generation "
                        f"({len(draft_tok)} vs {len(tok)} ids, or a different vocabulary)")
    rows = max(target.config.vocab_size, draft.config.vocab_size)
    if rows < len(tok):
        raise UserError(f"the models have {rows} vocabulary rows, fewer than the tokenizer's {len(tok)} ids")
    if target.config.vocab_size == draft.config.vocab_size:
        return None  # trained checkpoints never score their own padding rows high: nothing to change
    for m in (target, draft):
        if m.config.vocab_size < rows:
            m.resize_token_embeddings(rows, mean_resizing=False)
    return list(range(len(tok), rows))


def specbench(target_dir: Path, draft_dir: Path, data: Path, settings: SpecbenchSettings, split: str | None = "test",
              progress=None) -> dict:
    import torch

    from corpora_manifests.errors import UserError

    from .eval_generate import load_model_and_tokenizer, load_prompts, render, stop_token_ids

    prompts, _rejected = load_prompts(Path(data), split)
    prompts = prompts[: settings.limit] if settings.limit else prompts
    if not prompts:
        raise UserError(f"no prompts in {data}")
    target, tok = load_model_and_tokenizer(target_dir)
    draft, draft_tok = load_model_and_tokenizer(draft_dir)
    suppress = match_vocabularies(target, tok, draft, draft_tok)
    stops = stop_token_ids(tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else stops[0]
    inputs = [tok(render(tok, p.messages), return_tensors="pt", add_special_tokens=False)["input_ids"].to(target.device)
              for p in prompts]
    common = dict(max_new_tokens=settings.max_new_tokens, stops=stops, pad_id=pad, seed=settings.seed, suppress=suppress)
    rows, checks = [], []
    for mode in settings.modes:
        top_p = None if mode == "greedy" else settings.top_p
        mode_name = "greedy" if top_p is None else f"top-p {top_p}"
        base = run_method(target, None, inputs, method="target", n=None, mode=mode_name, top_p=top_p, **common)
        base_tps = base.new_tokens / base.seconds if base.seconds else None
        rows.append(base.row(base_tps, None))
        if progress:
            progress(f"{mode_name}: target alone {rows[-1]['tokens_per_s']} tok/s")
        for n in settings.ns:
            methods = [("draft", draft), ("prompt-lookup", None)]
            if settings.self_check and top_p is None:
                methods.append(("self-draft", target))
            for method, d in methods:
                r = run_method(target, d, inputs, method=method, n=n, mode=mode_name, top_p=top_p, **common)
                same = sum(a == b for a, b in zip(r.outputs, base.outputs)) if top_p is None else None
                rows.append(r.row(base_tps, same))
                if top_p is None:
                    checks.append({"check": f"{method} n={n}: greedy outputs equal the target's",
                                   "ok": same == len(inputs), "detail": f"{same}/{len(inputs)} prompts identical"})
                if method == "self-draft":
                    rate = rows[-1]["acceptance_rate"]
                    checks.append({"check": f"self-draft n={n}: greedy acceptance is 100 %",
                                   "ok": rate == 1.0, "detail": f"acceptance {rate}"})
                if progress:
                    progress(f"{mode_name}: {method} n={n} acceptance {rows[-1]['acceptance_rate']}")
    return {"target": str(Path(target_dir).resolve()), "draft": str(Path(draft_dir).resolve()),
            "data": str(Path(data).resolve()), "split": split, "prompts": len(inputs),
            "settings": asdict(settings), "device": str(target.device), "torch_threads": torch.get_num_threads(),
            "rows": rows, "checks": checks, "trustworthy": all(c["ok"] for c in checks),
            "definitions": DEFINITIONS, "backend": "transformers assisted generation (batch size 1)"}


def to_markdown(result: dict) -> str:
    head = ("| mode | method | n | acceptance | mean accepted len | tokens/round | tokens/s | speedup | "
            "greedy output = target |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    fmt = lambda v, p="{:.3f}": "–" if v is None else p.format(v)  # noqa: E731
    for r in result["rows"]:
        same = "–" if r["outputs_equal_target"] is None else f"{r['outputs_equal_target']}/{r['prompts']}"
        lines.append(f"| {r['mode']} | {r['method']} | {r['n'] or '–'} | {fmt(r['acceptance_rate'], '{:.1%}')} | "
                     f"{fmt(r['mean_accepted_length'], '{:.2f}')} | {fmt(r['tokens_per_round'], '{:.2f}')} | "
                     f"{fmt(r['tokens_per_s'], '{:.1f}')} | {fmt(r['speedup'], '{:.2f}x')} | {same} |")
    lines.append("")
    lines.append("Self-checks: " + ("all passed" if result["trustworthy"] else "FAILED - figures not trustworthy"))
    lines += [f"- {'ok' if c['ok'] else 'FAIL'}: {c['check']} ({c['detail']})" for c in result["checks"]]
    lines += [f"- {d}" for d in result["definitions"]]
    return "\n".join(lines) + "\n"
