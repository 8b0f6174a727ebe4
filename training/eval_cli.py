"""`soaes eval …`: generate answers, score them (ROUGE/BLEU), compare runs (Table 2), multiple-choice
accuracy (CMMLU/C-Eval, Table 1) and the speculative-decoding benchmark (Tables 4–6).
Heavy imports stay inside the commands so `soaes --help` is fast."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from soaes.options import ForceOpt, QuietOpt

app = typer.Typer(no_args_is_help=True)

OUTPUT_HELP = "Output directory."


def _echo(quiet: bool, text: str) -> None:
    if not quiet:
        typer.echo(text)


@app.command(help="Answer the prompts of an eval manifest with a model → predictions JSONL with ids (resumable).")
def generate(
    model: Path = typer.Option(..., "--model", help="Model directory (config.json + weights; tokenizer inside or Qwen2.5)."),
    data: Path = typer.Option(..., "--data", help="Eval manifest directory (stage eval or SFT)."),
    output: Path = typer.Option(..., "--output", "-o", help=OUTPUT_HELP + " Gets predictions.jsonl and generate.json."),
    split: str = typer.Option("test", "--split", help="Split of the manifest (ignored when it has none)."),
    greedy: bool = typer.Option(False, "--greedy", help="Greedy decoding (the default unless --top-p is given)."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Nucleus sampling with this top-p (e.g. 0.7)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature (with --top-p)."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens"),
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per batch (left-padded)."),
    seed: int = typer.Option(0, "--seed"),
    backend: str = typer.Option("auto", "--backend", help="auto | transformers | vllm (auto: vLLM when importable with a GPU)."),
    label: Optional[str] = typer.Option(None, "--label", help="Row name in `eval compare` (default: the stage name)."),
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    from corpora_manifests.errors import UserError
    from training.eval_generate import GenSettings, generate_predictions

    if greedy and top_p is not None:
        raise UserError("--greedy and --top-p exclude each other")
    if backend not in ("auto", "transformers", "vllm"):
        raise UserError(f"unknown --backend {backend!r} (auto | transformers | vllm)")
    settings = GenSettings(greedy=top_p is None, top_p=top_p, temperature=temperature,
                           max_new_tokens=max_new_tokens, seed=seed)
    summary = generate_predictions(model, data, output, settings, split=split, batch_size=batch_size,
                                   backend=backend, force=force, label=label)
    typer.echo(json.dumps(summary, ensure_ascii=False))


def score(
    predictions: Path = typer.Argument(..., help="Predictions JSONL (prediction/predict + reference/label, or id) "
                                                 "or a `soaes eval generate` output directory."),
    eval_manifest: Path = typer.Option(None, "--eval-manifest", help="Take references from this eval manifest, matched by id."),
    split: str = typer.Option(None, "--split", help="Split of the eval manifest (default: all)."),
    output: Path = typer.Option(None, "--output", "-o", help="Also write the JSON here (a file)."),
) -> None:
    from corpora_manifests.errors import UserError
    from training.eval_compare import DEFINITIONS, resolve_run
    from training.eval_metrics import compute_metrics, load_pairs, references_from_eval_manifest

    if not predictions.exists():
        raise UserError(f"predictions file not found: {predictions}")
    predictions, _ = resolve_run(predictions)
    refs = references_from_eval_manifest(eval_manifest, split) if eval_manifest else None
    loaded = load_pairs(predictions, refs)
    if not loaded.pairs:
        raise UserError(f"no scorable records in {predictions} ({len(loaded.rejected)} rejected)")
    result = compute_metrics(loaded.pairs)
    reasons: dict[str, int] = {}
    for r in loaded.rejected:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    result["rejected"] = reasons
    result["conventions"] = {"rouge": DEFINITIONS[0], "bleu": DEFINITIONS[1]}
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if output:
        output.write_text(text, encoding="utf-8")
    typer.echo(text)


_SCORE_HELP = "ROUGE-1/2/L (jieba words) and BLEU-4 (characters) of predictions vs references; prints JSON."
app.command("score", help=_SCORE_HELP)(score)
app.command("metrics", help="Alias of `score`. " + _SCORE_HELP)(score)


@app.command(help="Table 2: ROUGE-1/2/L and BLEU-4 of several runs side by side → compare.md, compare.json, compare.png.")
def compare(
    runs: List[Path] = typer.Argument(..., help="`eval generate` output directories or predictions JSONL files."),
    output: Path = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated row names, one per run."),
    eval_manifest: Path = typer.Option(None, "--eval-manifest", help="Take references from this eval manifest."),
    split: str = typer.Option(None, "--split", help="Split of --eval-manifest."),
    all_ids: bool = typer.Option(False, "--all-ids", help="Score each run on all its answers, not only the shared ids."),
    quiet: QuietOpt = False,
) -> None:
    from training.eval_compare import compare_runs, to_markdown, write_outputs
    from training.eval_metrics import references_from_eval_manifest

    refs = references_from_eval_manifest(eval_manifest, split) if eval_manifest else None
    result = compare_runs(list(runs), labels.split(",") if labels else None, refs, common_ids=not all_ids)
    paths = write_outputs(result, output)
    _echo(quiet, to_markdown(result))
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def _ints(text: str) -> tuple[int, ...]:
    from corpora_manifests.errors import UserError

    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        vals = ()
    if not vals or min(vals) < 1:
        raise UserError(f"--n takes positive integers separated by commas (e.g. 3,5), not {text!r}")
    return vals


@app.command(help="Speculative decoding benchmark (batch size 1): target alone vs draft-model assisted generation "
                  "vs prompt lookup; acceptance, mean accepted length, tokens/s, speedup; self-draft check.")
def specbench(
    target: Path = typer.Option(..., "--target", help="Target model directory."),
    draft: Path = typer.Option(..., "--draft", help="Draft model directory (same tokenizer as the target)."),
    data: Path = typer.Option(..., "--data", help="Eval manifest directory: its prompts are decoded."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP + " Gets specbench.json/.md."),
    split: str = typer.Option("test", "--split"),
    n: str = typer.Option("3,5", "--n", help="Draft lengths (tokens per round), comma-separated."),
    greedy: bool = typer.Option(False, "--greedy", help="Benchmark greedy decoding."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Benchmark top-p sampling (the paper: 0.7). "
                                                                "Neither flag: both greedy and top-p 0.7."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
    limit: int = typer.Option(20, "--limit", help="Prompts to decode (0: all)."),
    seed: int = typer.Option(0, "--seed"),
    self_check: bool = typer.Option(True, "--self-check/--no-self-check", help="Run the draft = target sanity check."),
    quiet: QuietOpt = False,
) -> None:
    import os

    from training.specbench import SpecbenchSettings, specbench as run, to_markdown

    modes = tuple(m for m, on in (("greedy", greedy), ("top-p", top_p is not None)) if on) or ("greedy", "top-p")
    settings = SpecbenchSettings(ns=_ints(n), modes=modes, top_p=top_p or 0.7, max_new_tokens=max_new_tokens,
                                 limit=limit or None, seed=seed, self_check=self_check)
    result = run(target, draft, data, settings, split=split, progress=None if quiet else typer.echo)
    md = to_markdown(result)
    if output:
        output.mkdir(parents=True, exist_ok=True)
        for name, text in (("specbench.json", json.dumps(result, ensure_ascii=False, indent=2)), ("specbench.md", md)):
            (output / (name + ".tmp")).write_text(text, encoding="utf-8")
            os.replace(output / (name + ".tmp"), output / name)
    typer.echo(md)
    if not result["trustworthy"]:
        typer.echo("specbench: a self-check failed; do not trust these figures", err=True)
        raise typer.Exit(1)


@app.command(help="Multiple-choice accuracy per subject and overall on CMMLU/C-Eval formatted CSVs, 0- and 5-shot "
                  "(lm-evaluation-harness on the local files); --baseline prints the retention ratio.")
def mcq(
    model: Path = typer.Option(..., "--model", help="Model directory."),
    data: Path = typer.Option(..., "--data", help="Directory with test|val/<subject>.csv and dev/<subject>.csv."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Base model directory: retention = model / base."),
    shots: str = typer.Option("0,5", "--shots", help="Few-shot settings, comma-separated."),
    split: Optional[str] = typer.Option(None, "--split", help="test or val (default: test, else val)."),
    engine: str = typer.Option("auto", "--engine", help="auto | lm-eval | native (auto: lm-eval when installed)."),
    batch_size: int = typer.Option(1, "--batch-size", help="lm-eval batch size."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help=OUTPUT_HELP + " Gets mcq.json/.md."),
    quiet: QuietOpt = False,
) -> None:
    import os

    from corpora_manifests.errors import UserError
    from training.eval_mcq import evaluate_mcq, retention, to_markdown

    if engine not in ("auto", "lm-eval", "native"):
        raise UserError(f"unknown --engine {engine!r} (auto | lm-eval | native)")
    try:
        shot_list = tuple(int(s) for s in shots.split(",") if s.strip())
    except ValueError:
        raise UserError(f"--shots takes integers separated by commas, not {shots!r}")
    res = evaluate_mcq(model, data, shot_list, engine, split, batch_size)
    base = evaluate_mcq(baseline, data, shot_list, engine, split, batch_size) if baseline else None
    if base:
        res["retention"] = retention(res, base)
    md = to_markdown(res, base)
    if output:
        output.mkdir(parents=True, exist_ok=True)
        files = [("mcq.json", json.dumps(res, ensure_ascii=False, indent=2)), ("mcq.md", md)]
        if base:
            files.append(("baseline.json", json.dumps(base, ensure_ascii=False, indent=2)))
        for name, text in files:
            (output / (name + ".tmp")).write_text(text, encoding="utf-8")
            os.replace(output / (name + ".tmp"), output / name)
    typer.echo(md)
    if base:
        typer.echo("retention (% of baseline overall): " + ", ".join(f"{k} {v:.2f}" for k, v in res["retention"].items()))
