"""`soaes manifest …`: verify, show, schema, export."""
from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


def _load(directory: Path):
    from corpora_manifests.models import ManifestError, load_manifest

    try:
        return load_manifest(directory)
    except ManifestError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)


@app.command(help="Re-hash every shard; exit 1 naming each missing, truncated or altered shard.")
def verify(directory: Path = typer.Argument(..., help="Directory holding manifest.json")) -> None:
    from corpora_manifests.shards import verify_manifest

    manifest = _load(directory)
    problems = verify_manifest(directory, manifest)
    for p in problems:
        typer.echo(f"FAIL {p}", err=True)
    if problems:
        typer.echo(f"{len(problems)} of {len(manifest.shards)} shards failed verification", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: {len(manifest.shards)} shards, {manifest.totals.records} records, "
               f"{manifest.totals.tokens} tokens verified")


@app.command(help="Print a summary table of a manifest.")
def show(directory: Path = typer.Argument(..., help="Directory holding manifest.json")) -> None:
    from rich.console import Console
    from rich.table import Table

    m = _load(directory)
    con = Console()
    con.print(f"[bold]{m.name}[/bold]  stage={m.stage}  schema={m.schema_version}  "
              f"produced by {m.producer.tool} {m.producer.version} ({m.producer.git_commit or 'no git'})")
    if m.tokenizer:
        con.print(f"tokenizer: {m.tokenizer.name} vocab={m.tokenizer.vocab_size} fp={m.tokenizer.fingerprint[:16]}")
    t = Table("shard", "split", "records", "tokens", "bytes", "sha256")
    for s in m.shards:
        t.add_row(s.path, s.split or "", f"{s.records:,}", f"{s.tokens:,}", f"{s.bytes:,}", s.sha256[:12])
    t.add_row("[bold]total[/bold]", "", f"{m.totals.records:,}", f"{m.totals.tokens:,}", f"{m.totals.bytes:,}", "")
    con.print(t)
    if m.sources:
        st = Table("source", "licence", "counts")
        for s in m.sources:
            st.add_row(s.name, s.licence or "", json.dumps(s.counts, ensure_ascii=False))
        con.print(st)
    if m.stats:
        con.print_json(json.dumps(m.stats, ensure_ascii=False, default=str))


@app.command(help="Print the manifest JSON Schema.")
def schema() -> None:
    from corpora_manifests.models import manifest_json_schema

    typer.echo(json.dumps(manifest_json_schema(), indent=2, ensure_ascii=False))


@app.command(help="Export a manifest: LLaMA-Factory dataset_info.json entries or a datasets.load_dataset call.")
def export(
    directory: Path = typer.Argument(..., help="Directory holding manifest.json"),
    to: str = typer.Option("llamafactory", "--to", help="llamafactory | hf"),
    name: str = typer.Option(None, "--name", help="Dataset name (default: the manifest's name)"),
) -> None:
    from corpora_manifests import exports

    _load(directory)
    if to == "llamafactory":
        typer.echo(json.dumps(exports.to_llamafactory(directory, name), indent=2, ensure_ascii=False))
    elif to == "hf":
        typer.echo(exports.to_load_dataset_call(directory))
    else:
        typer.echo(f"error: --to must be 'llamafactory' or 'hf', got {to!r}", err=True)
        raise typer.Exit(2)
