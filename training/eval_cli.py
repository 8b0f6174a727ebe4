"""`soaes eval …`: metrics on generated answers against references."""
from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command(help="ROUGE-1/2/L (jieba words) and BLEU-4 (characters) of predictions vs references; prints JSON.")
def metrics(
    predictions: Path = typer.Argument(..., help="JSONL with prediction/predict and reference/label (or id)."),
    eval_manifest: Path = typer.Option(None, "--eval-manifest", help="Take references from this eval manifest, matched by id."),
    split: str = typer.Option(None, "--split", help="Split of the eval manifest (default: all)."),
    output: Path = typer.Option(None, "--output", "-o", help="Also write the JSON here."),
) -> None:
    from corpora_manifests.errors import UserError
    from training.eval_metrics import compute_metrics, load_pairs, references_from_eval_manifest

    if not predictions.exists():
        raise UserError(f"predictions file not found: {predictions}")
    refs = references_from_eval_manifest(eval_manifest, split) if eval_manifest else None
    loaded = load_pairs(predictions, refs)
    if not loaded.pairs:
        raise UserError(f"no scorable records in {predictions} ({len(loaded.rejected)} rejected)")
    result = compute_metrics(loaded.pairs)
    reasons: dict[str, int] = {}
    for r in loaded.rejected:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    result["rejected"] = reasons
    result["conventions"] = {"rouge": "F1 on jieba words, per-sample mean x100 (rouge-chinese)",
                             "bleu": "corpus BLEU-4 on characters x100 (sacrebleu tokenize=zh)"}
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if output:
        output.write_text(text, encoding="utf-8")
    typer.echo(text)
