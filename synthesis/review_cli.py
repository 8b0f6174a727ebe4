"""`soaes review` commands: the export/import round trip with annotators, and status."""
from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True)


def _store_path(config: Optional[str], store: Optional[str]) -> str:
    from corpora_manifests.errors import UserError

    if store:
        return store
    if config:
        from synthesis.pipeline import load_synth_config

        cfg, _ = load_synth_config(config)
        return str(cfg.store_path)
    raise UserError("pass --config CONFIG.yaml or --store review.sqlite")


def _open(config: Optional[str], store: Optional[str], must_exist: bool = True):
    from pathlib import Path

    from corpora_manifests.errors import UserError
    from synthesis.store import ReviewStore

    p = Path(_store_path(config, store))
    if must_exist and not p.exists():
        raise UserError(f"review store not found: {p} (run `soaes synth run` first)")
    return ReviewStore(p)


@app.command(help="Export pending items for annotators: jsonl, csv (UTF-8 with BOM, opens in Excel) or labelstudio "
                  "(a directory with tasks.json + labeling_config.xml).")
def export(
    output: str = typer.Argument(..., help="Output file (jsonl/csv) or directory (labelstudio)."),
    format: str = typer.Option("auto", "--format", "-f", help="jsonl | csv | labelstudio (auto: by extension)."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="The synth run config (locates the store)."),
    store: Optional[str] = typer.Option(None, "--store", help="Path of review.sqlite."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Export at most this many items."),
) -> None:
    from pathlib import Path

    from synthesis.review_io import export_pending

    fmt = format
    if fmt == "auto":
        suffix = Path(output).suffix.lower()
        fmt = {".jsonl": "jsonl", ".csv": "csv"}.get(suffix, "labelstudio")
    with _open(config, store) as st:
        n = export_pending(st, output, fmt, limit=limit)
    typer.echo(f"exported {n} pending items as {fmt} -> {output}")


@app.command("import", help="Import reviewed decisions (jsonl, csv, or a Label Studio JSON export). Idempotent; "
                            "conflicting decisions are reported, never overwritten.")
def import_(
    path: str = typer.Argument(..., help="The reviewed file."),
    format: str = typer.Option("auto", "--format", "-f", help="jsonl | csv | labelstudio (auto: .jsonl/.csv/.json)."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="The synth run config (locates the store)."),
    store: Optional[str] = typer.Option(None, "--store", help="Path of review.sqlite."),
    annotator: Optional[str] = typer.Option(None, "--annotator", help="Annotator for rows that name none."),
) -> None:
    import json

    from synthesis.review_io import import_decisions

    with _open(config, store) as st:
        rep = import_decisions(st, path, format, annotator=annotator)
        counts = st.status_counts()
    d = rep.as_dict()
    typer.echo(f"rows {d['rows']}: recorded {d['recorded']}, already imported {d['duplicates']}, "
               f"undecided {d['skipped_undecided']}, cancelled {d['cancelled']}, unknown items {d['unknown_items']}, "
               f"invalid {d['invalid']}")
    for line in rep.invalid[:20]:
        typer.echo(f"  invalid: {line}")
    if d["conflicts"]:
        typer.echo(f"CONFLICTS ({len(d['conflicts'])}), not overwritten; see `soaes review status --conflicts`: "
                   + ", ".join(d["conflicts"][:20]))
    typer.echo("store: " + json.dumps(counts))


@app.command(help="Counts of pending / approved / rejected / conflict items (by origin and task type).")
def status(
    config: Optional[str] = typer.Option(None, "--config", "-c", help="The synth run config (locates the store)."),
    store: Optional[str] = typer.Option(None, "--store", help="Path of review.sqlite."),
    conflicts: bool = typer.Option(False, "--conflicts", help="List conflicting decisions."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    import json

    with _open(config, store) as st:
        counts = st.status_counts()
        by_origin = st.counts_by("origin")
        by_task = st.counts_by("task_type")
        conf = st.conflicts() if conflicts else []
    if as_json:
        typer.echo(json.dumps({"counts": counts, "by_origin": by_origin, "by_task_type": by_task,
                               "conflicts": [{"item_id": c.item.item_id, "decisions": [d.__dict__ for d in c.decisions]}
                                             for c in conf]}, ensure_ascii=False, indent=2))
        return
    typer.echo("  ".join(f"{k}: {v}" for k, v in counts.items()))
    for name, table in (("origin", by_origin), ("task type", by_task)):
        for key, c in sorted(table.items()):
            typer.echo(f"  {name} {key}: " + ", ".join(f"{s}={n}" for s, n in sorted(c.items())))
    for c in conf:
        typer.echo(f"conflict {c.item.item_id}: {c.item.question[:60]}")
        for d in c.decisions:
            edited = " (edited answer)" if d.edited_answer else ""
            typer.echo(f"    {d.decided_at} {d.annotator} via {d.channel}: {d.decision}{edited}")
