"""`soaes filters` commands. Heavy imports stay inside commands."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from soaes.options import ConfigArg, ExecutorOpt, ForceOpt, OutputOpt, QuietOpt, SetOpt, VerboseOpt, WorkersOpt

app = typer.Typer(no_args_is_help=True)


def _echo_json(obj) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2))


@app.command("train-domain", help="Train the fastText domain classifier (labels finance/law/business/politics/other "
                                   "or in/out); calibrates the P(in) threshold on --valid and writes MODEL + MODEL.json.")
def train_domain(
    train: Path = typer.Option(..., "--train", help="JSONL {text,label} or fastText __label__ lines"),
    output: Path = typer.Option(..., "--output", "-o", help="model path (.ftz: quantized, smaller, ~3x slower; .bin otherwise)"),
    valid: Optional[Path] = typer.Option(None, "--valid", help="validation file (default: 10% hash split of --train)"),
    features: str = typer.Option("char", help="char | char+word (jieba words added; slower)"),
    max_chars: int = typer.Option(128, help="Chinese characters/Latin letters of each sample the classifier reads"),
    dim: int = typer.Option(16), epoch: int = typer.Option(25), lr: float = typer.Option(0.5),
    word_ngrams: int = typer.Option(2, help="fastText wordNgrams over characters (char n-grams)"),
    bucket: int = typer.Option(60_000), cutoff: int = typer.Option(100_000, help="quantization (.ftz): keep this many rows"),
    balance: bool = typer.Option(False, help="oversample minority classes to the majority count"),
    workers: int = typer.Option(1, "--workers", "-w", "--threads", help="fastText training threads"),
) -> None:
    from .domain.train import train as do_train

    if features not in ("char", "char+word"):
        raise typer.BadParameter("--features must be char or char+word")
    side = do_train(train, output, valid, features=features, max_chars=max_chars, dim=dim, epoch=epoch, lr=lr,
                    word_ngrams=word_ngrams, bucket=bucket, cutoff=cutoff, quantize=output.suffix == ".ftz",
                    balance=balance, threads=workers)
    _echo_json({"model": str(output), "bytes": side["model_bytes"], "labels": side["labels"],
                "threshold": side["threshold"], "valid": side["valid"]["metrics"]["binary_in"]})


@app.command("eval-domain", help="Evaluate a domain model on labelled data; prints JSON (accuracy, macro-F1, "
                                  "per-class P/R/F1, confusion matrix, binary in-domain P/R/F1).")
def eval_domain(
    model: Path = typer.Option(None, "--model", help="default: the shipped filters/models/domain_zh.bin"),
    data: Path = typer.Option(..., "--data", help="JSONL {text,label} or fastText __label__ lines"),
    threshold: Optional[float] = typer.Option(None, help="override the calibrated threshold"),
) -> None:
    from .domain.model import DomainModel
    from .domain.train import evaluate, read_labelled

    _echo_json(evaluate(DomainModel(model, threshold), read_labelled(data)))


@app.command(help="Classify texts (a JSONL/JSON/parquet instruction file, or text lines) and print JSON lines "
                  "{id, domain, p_in, in}.")
def predict(
    input: Path = typer.Argument(..., help="instruction file (any supported format) or a .txt with one text per line"),
    model: Path = typer.Option(None, "--model", help="default: the shipped model"),
    threshold: Optional[float] = typer.Option(None),
    format: str = typer.Option("auto", "--format", help="auto|infinity|sharegpt|openai|longwriter|alpaca"),
) -> None:
    from corpora_manifests.errors import UserError

    from .domain.model import DomainModel
    from .readers import Malformed, read_samples
    from .text import domain_text

    if not input.exists():
        raise UserError(f"input not found: {input}")
    m = DomainModel(model, threshold)
    if input.suffix == ".txt":
        items = [(str(i), line.rstrip("\n")) for i, line in enumerate(input.open(encoding="utf-8")) if line.strip()]
    else:
        items = []
        for s in read_samples(input, format):
            if isinstance(s, Malformed):
                typer.echo(json.dumps({"id": s.id, "error": s.reason, "detail": s.detail}, ensure_ascii=False))
            else:
                items.append((s.id, domain_text(s.messages)))
    for start in range(0, len(items), 1024):
        chunk = items[start:start + 1024]
        for (rid, _), p in zip(chunk, m.predict([t for _, t in chunk])):
            typer.echo(json.dumps({"id": rid, "domain": p.domain, "p_in": round(p.p_in, 4),
                                   "in": p.is_in}, ensure_ascii=False))


@app.command("build-trainset", help="Assemble labelled domain data (train/valid/held-out JSONL) from a data directory "
                                     "holding the labelled corpora (docs/filters.md lists them).")
def build_trainset(
    data: Path = typer.Option(..., "--data", help="directory holding the labelled corpora (docs/filters.md)"),
    output: Path = typer.Option(..., "--output", "-o"),
    research: bool = typer.Option(False, "--research", help="also use sets without a licence (THUCNews, FewCLUE): "
                                                            "for a local model that must not be redistributed"),
    binary: bool = typer.Option(False, "--binary", help="in/out labels instead of domains"),
) -> None:
    from .domain.trainset import build_trainset as build

    _echo_json(build(data, output, research=research, binary_labels=binary))


@app.command("train-default", help="Rebuild the shipped domain model from the labelled corpora (--data) in one command: every "
                                    "labelled source family + pseudo-labelled pool negatives, format views, "
                                    "fastText, threshold (see docs/filters.md).")
def train_default(
    data: Path = typer.Option(..., "--data", help="directory holding the labelled corpora (docs/filters.md)"),
    output: Path = typer.Option(None, "--output", "-o", help="default: filters/models/domain_zh.bin"),
    threshold_from: Optional[Path] = typer.Option(None, "--threshold-from",
                                                  help="JSON of benchmarks/domain_lofo.py: use the threshold it chose "
                                                       "on the held-out families' dev splits"),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="use this threshold"),
    licence: str = typer.Option("permissive", "--licence",
                                help="permissive: only the sources that may be redistributed (the shipped model); "
                                     "any: every labelled set, a research model for your own use - do not "
                                     "redistribute it (needs its own --output)"),
    stack: bool = typer.Option(True, "--stack/--no-stack",
                               help="combine P(in) with lexicon evidence (the newest stacking the --threshold-from "
                                    "JSON has out-of-family rows for; filters/domain/stack.py)"),
    recipe: Optional[str] = typer.Option(None, "--recipe",
                                         help="training recipe (filters/domain/lofo.py RECIPES; default: the shipped "
                                              "one, ours_chat)"),
) -> None:
    from .domain.recipe import train_default_model

    _echo_json(train_default_model(data, output, threshold_from=threshold_from, threshold=threshold, licence=licence,
                                   stack=stack, recipe=recipe))


@app.command(help="Label a sample of your own pool with the configured OpenAI-compatible LLM (finance/law/business/"
                  "politics/other + rationale; versioned prompt; cached, retried, resumable) into OUTPUT/labels.jsonl "
                  "for `train-domain --train`. First batch stratified over P(in) bands x sources, later batches by "
                  "uncertainty (--strategy uncertainty --set model=THE_NEW_MODEL).")
def label(
    pool: List[Path] = typer.Argument(..., help="POOL... [CONFIG.yaml]: instruction file(s)/dir(s) to sample from, "
                                                "then the run's YAML config (llm, prompt_version, model, sample, "
                                                "strategy, output; see filters/label.py)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", hidden=True, help="Deprecated: pass the config "
                                                                                   "positionally."),
    sample: Optional[int] = typer.Option(None, "--sample", "-n", help="records to label in this batch"),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="stratified | uncertainty"),
    sets: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE", help="override a config key"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="output directory (labels.jsonl, rejects.jsonl)"),
) -> None:
    from soaes.options import load_cli_config

    from .label import LabelConfig, label_pool

    # `soaes filters label POOL CONFIG.yaml`: a trailing .yaml/.yml among the positionals is the config
    paths = list(pool)
    if config is None and paths and paths[-1].suffix in (".yaml", ".yml"):
        config = paths.pop()
    if not paths:
        raise typer.BadParameter("give at least one pool file or directory")
    cfg, _ = load_cli_config(config, LabelConfig, sets, output=output, sample=sample, strategy=strategy)
    res = label_pool(paths, cfg)
    _echo_json(res)
    if not res.get("counts", {}).get("labelled") and res["chosen"]:
        raise typer.Exit(1)  # a batch that labelled nothing: every request failed (see rejects.jsonl)


@app.command("seed-score", help="Score a pool by similarity to seed examples of your target domain (char n-grams, "
                                 "or a local transformers model's hidden states); prints JSON lines {id, seed_score}. "
                                 "In a run: the `seed:` config section (score -> seed.score, keep >= threshold).")
def seed_score(
    pool: Path = typer.Argument(..., help="instruction file to score"),
    seeds: Path = typer.Option(..., "--seeds", help="seed examples (instruction file or .txt, one per line)"),
    mode: str = typer.Option("char", "--mode", help="char | hf"),
    model: Optional[Path] = typer.Option(None, "--model", help="local transformers model directory (mode hf)"),
    top_k: int = typer.Option(5, "--top-k"),
) -> None:
    from corpora_manifests.errors import UserError

    from .seed import dumps, score_file

    if not pool.exists():
        raise UserError(f"pool not found: {pool}")
    typer.echo(dumps(score_file(pool, seeds, mode, str(model) if model else None, top_k)))


@app.command(help="Run SFT stage 1 (read → language → domain → near-dedup → decontamination → shards + manifest "
                  "+ report) from a YAML config.")
def run(
    config: ConfigArg,
    sets: SetOpt = None,
    output: OutputOpt = None,
    workers: WorkersOpt = None,
    executor: ExecutorOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    force: ForceOpt = False,
) -> None:
    from soaes.console import RunConsole, finish_run
    from soaes.options import call_with_force, command_line, load_cli_config

    from .config import FiltersConfig
    from .pipeline import run_filters

    cfg, text = load_cli_config(config, FiltersConfig, sets, output=output, workers=workers, executor=executor)
    with RunConsole("filters", cfg.output, quiet=quiet, verbose=verbose) as con:
        out = call_with_force(run_filters, cfg, config_text=text, command=command_line(), force=force,
                              command_name="filters run")
    if not (out / "manifest.json").exists():
        return finish_run(con, out, "samples")
    from corpora_manifests.models import load_manifest

    st = load_manifest(out).stats
    finish_run(con, out, "samples", [("read", f"{st.get('records_read', 0):,} samples, kept {st.get('records_kept', 0):,}")])
