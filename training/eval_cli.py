"""`soaes eval …`: generate answers, score them (ROUGE/BLEU), compare runs (Table 2), multiple-choice
accuracy (CMMLU/C-Eval, Table 1) and the speculative-decoding benchmark (Tables 4–6).
Heavy imports stay inside the commands so `soaes --help` is fast."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

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
    force: bool = typer.Option(False, "--force", help="Discard existing predictions and start again."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary and errors."),
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the output paths."),
) -> None:
    from training.eval_compare import compare_runs, to_markdown, write_outputs
    from training.eval_metrics import references_from_eval_manifest

    refs = references_from_eval_manifest(eval_manifest, split) if eval_manifest else None
    result = compare_runs(list(runs), labels.split(",") if labels else None, refs, common_ids=not all_ids)
    paths = write_outputs(result, output)
    _echo(quiet, to_markdown(result))
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
