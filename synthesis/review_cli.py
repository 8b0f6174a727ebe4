"""`soaes review` commands: the export/import round trip with annotators, status, settling
conflicts, and the built-in review app (`serve`, `add-user`).

Every command finds the review store the way `soaes synth run` placed it: the run config as the
first argument with the same `--set key=value` and `-o/--output DIR` overrides (so
`soaes review status CONFIG.yaml -o DIR` follows `soaes synth run CONFIG.yaml -o DIR`), or
`-o DIR` alone (the run's `DIR/review.sqlite`), or `--store/--db review.sqlite`.
"""
from __future__ import annotations

from typing import List, Optional  # noqa: F401

import typer

from soaes.options import OutputOpt, SetOpt

app = typer.Typer(no_args_is_help=True)

_CONFIG_HELP = "The synth run config (locates the store, with --set/-o as given to `soaes synth run`)."
_STORE_HELP = "Path of review.sqlite (instead of a config)."


def _store_path(config: Optional[str], sets: Optional[List[str]], output: Optional[str], store: Optional[str]) -> str:
    from pathlib import Path

    from corpora_manifests.errors import UserError

    if store:
        return store
    if config or sets:
        from synthesis.pipeline import load_synth_config

        overrides = list(sets or []) + ([f"output_dir={output}"] if output else [])  # as `synth run -o`
        cfg, _ = load_synth_config(config, overrides)
        return str(cfg.store_path)
    if output:
        return str(Path(output) / "review.sqlite")
    raise UserError("say which run: pass the run config (CONFIG.yaml [--set k=v] [-o DIR]), -o RUN_DIR or "
                    "--store review.sqlite")


def _open(config, sets, output, store, must_exist: bool = True):
    from pathlib import Path

    from corpora_manifests.errors import UserError
    from synthesis.store import ReviewStore

    p = Path(_store_path(config, sets, output, store))
    if must_exist and not p.exists():
        raise UserError(f"review store not found: {p} (run `soaes synth run` first)")
    return ReviewStore(p)


def _two(first: Optional[str], second: Optional[str], what: str) -> tuple[Optional[str], str]:
    """`[CONFIG] THING`: one positional is the thing, two are the config and the thing."""
    from corpora_manifests.errors import UserError

    if second is None:
        if first is None:
            raise UserError(f"missing {what}")
        return None, first
    return first, second


@app.command(help="Export items for annotators: jsonl, csv (UTF-8 with BOM, opens in Excel) or labelstudio "
                  "(a directory with tasks.json + labeling_config.xml). Selects items not yet exported to that "
                  "target or changed since; --conflicts exports the items in conflict for a lead to settle.")
def export(
    config_or_dest: Optional[str] = typer.Argument(None, metavar="[CONFIG]", help=_CONFIG_HELP),
    dest: Optional[str] = typer.Argument(None, metavar="DEST", help="Output file (jsonl/csv) or directory (labelstudio)."),
    format: str = typer.Option("auto", "--format", "-f", help="jsonl | csv | labelstudio (auto: by extension)."),
    conflicts: bool = typer.Option(False, "--conflicts", help="Export the items in conflict (with the decisions "
                                                              "that disagree); the answers that come back settle them."),
    everything: bool = typer.Option(False, "--all", help="Also items already exported to this target."),
    target: Optional[str] = typer.Option(None, "--target", help="Name of the export target (default: the format)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Export at most this many items."),
    set_: SetOpt = None,
    output: OutputOpt = None,
    config: Optional[str] = typer.Option(None, "--config", "-c", hidden=True, help="Deprecated: pass the config positionally."),
    store: Optional[str] = typer.Option(None, "--store", "--db", help=_STORE_HELP),
) -> None:
    from pathlib import Path

    from synthesis.review_io import export_items

    cfg_arg, out_path = _two(config_or_dest, dest, "DEST (the export file or directory)")
    fmt = format
    if fmt == "auto":
        suffix = Path(out_path).suffix.lower()
        fmt = {".jsonl": "jsonl", ".csv": "csv"}.get(suffix, "labelstudio")
    with _open(cfg_arg or config, set_, output, store) as st:
        n = export_items(st, out_path, fmt, conflicts=conflicts, everything=everything, limit=limit, target=target)
    what = "conflict" if conflicts else "pending"
    typer.echo(f"exported {n} {what} items as {fmt} -> {out_path}")


@app.command("import", help="Import reviewed decisions (jsonl, csv, or a Label Studio JSON export). Each annotation "
                            "is an event (its id and time): revisions count, re-imports record nothing; "
                            "conflicting decisions are reported, never overwritten.")
def import_(
    config_or_path: Optional[str] = typer.Argument(None, metavar="[CONFIG]", help=_CONFIG_HELP),
    path: Optional[str] = typer.Argument(None, metavar="FILE", help="The reviewed file."),
    format: str = typer.Option("auto", "--format", "-f", help="jsonl | csv | labelstudio (auto: .jsonl/.csv/.json)."),
    annotator: Optional[str] = typer.Option(None, "--annotator", help="Annotator for rows that name none."),
    users: Optional[str] = typer.Option(None, "--users", help="Label Studio user id -> name map: /api/users JSON, "
                                                              "{\"id\": \"name\"} JSON or CSV id,email."),
    set_: SetOpt = None,
    output: OutputOpt = None,
    config: Optional[str] = typer.Option(None, "--config", "-c", hidden=True, help="Deprecated: pass the config positionally."),
    store: Optional[str] = typer.Option(None, "--store", "--db", help=_STORE_HELP),
) -> None:
    import json

    from synthesis.review_io import import_decisions

    cfg_arg, file_path = _two(config_or_path, path, "FILE (the reviewed file)")
    with _open(cfg_arg or config, set_, output, store) as st:
        rep = import_decisions(st, file_path, format, annotator=annotator, users=users)
        counts = st.status_counts()
    d = rep.as_dict()
    typer.echo(f"rows {d['rows']}: recorded {d['recorded']} (settlements {d['resolved']}), already imported "
               f"{d['duplicates']}, undecided {d['skipped_undecided']}, cancelled {d['cancelled']}, "
               f"unknown items {d['unknown_items']}, invalid {d['invalid']}")
    for line in rep.invalid[:20]:
        typer.echo(f"  invalid: {line}")
    if d["conflicts"]:
        typer.echo(f"CONFLICTS ({len(d['conflicts'])}), not overwritten; see `soaes review status --conflicts`, settle "
                   "with `soaes review resolve` or `soaes review export --conflicts`: " + ", ".join(d["conflicts"][:20]))
    typer.echo("store: " + json.dumps(counts))


def _decision_dict(d) -> dict:
    return {"annotator": d.annotator, "decision": d.decision, "edited_answer": d.edited_answer,
            "decided_at": d.decided_at, "channel": d.channel, "comment": d.comment,
            "resolves_conflict": d.resolves_conflict, "source_id": d.source_id}


@app.command(help="Counts of pending / approved / rejected / conflict items (by origin and task type); "
                  "--json lists the conflicts with the decisions that disagree.")
def status(
    config_arg: Optional[str] = typer.Argument(None, metavar="[CONFIG]", help=_CONFIG_HELP),
    conflicts: bool = typer.Option(False, "--conflicts", help="List conflicting decisions."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (always with the conflicts)."),
    set_: SetOpt = None,
    output: OutputOpt = None,
    config: Optional[str] = typer.Option(None, "--config", "-c", hidden=True, help="Deprecated: pass the config positionally."),
    store: Optional[str] = typer.Option(None, "--store", "--db", help=_STORE_HELP),
) -> None:
    import json

    with _open(config_arg or config, set_, output, store) as st:
        counts = st.status_counts()
        by_origin = st.counts_by("origin")
        by_task = st.counts_by("task_type")
        conf = st.conflicts() if (conflicts or as_json) else []
        effective = {c.item.item_id: st.effective_decisions(c.item.item_id) for c in conf}
    if as_json:
        typer.echo(json.dumps({"counts": counts, "by_origin": by_origin, "by_task_type": by_task,
                               "conflicts": [{"item_id": c.item.item_id, "question": c.item.question,
                                              "title": c.item.title,
                                              "disagreeing": [_decision_dict(d) for d in effective[c.item.item_id]],
                                              "decisions": [_decision_dict(d) for d in c.decisions]}
                                             for c in conf]}, ensure_ascii=False, indent=2))
        return
    typer.echo("  ".join(f"{k}: {v}" for k, v in counts.items()))
    for name, table in (("origin", by_origin), ("task type", by_task)):
        for key, c in sorted(table.items()):
            typer.echo(f"  {name} {key}: " + ", ".join(f"{s}={n}" for s, n in sorted(c.items())))
    for c in conf:
        typer.echo(f"conflict {c.item.item_id}: {c.item.question[:60]}")
        for d in effective[c.item.item_id]:
            edited = " (edited answer)" if d.edited_answer else ""
            typer.echo(f"    {d.decided_at} {d.annotator} via {d.channel}: {d.decision}{edited}")


@app.command(help="Settle an item (usually a conflict) as the lead: the decision (and answer) that counts.")
def resolve(
    config_or_item: Optional[str] = typer.Argument(None, metavar="[CONFIG]", help=_CONFIG_HELP),
    item: Optional[str] = typer.Argument(None, metavar="ITEM", help="The item id."),
    decision: str = typer.Option(..., "--decision", "-d", help="accept | reject (also 通过/驳回)."),
    answer: Optional[str] = typer.Option(None, "--answer", help="The answer that counts (accept only)."),
    annotator: str = typer.Option("lead", "--annotator", "--by", help="Who settles it (recorded in the audit)."),
    comment: Optional[str] = typer.Option(None, "--comment", help="Why (kept with the decision)."),
    set_: SetOpt = None,
    output: OutputOpt = None,
    config: Optional[str] = typer.Option(None, "--config", "-c", hidden=True, help="Deprecated: pass the config positionally."),
    store: Optional[str] = typer.Option(None, "--store", "--db", help=_STORE_HELP),
) -> None:
    from corpora_manifests.errors import UserError
    from synthesis.review_io import normalise_decision

    cfg_arg, item_id = _two(config_or_item, item, "ITEM (the item id)")
    verdict = normalise_decision(decision)
    if verdict not in ("accept", "reject"):
        raise UserError(f"--decision must be accept or reject, got {decision!r}")
    if answer is not None and verdict == "reject":
        raise UserError("--answer goes with --decision accept")
    with _open(cfg_arg or config, set_, output, store) as st:
        before = st.get(item_id, with_decisions=False)
        if before is None:
            raise UserError(f"no item {item_id!r} in {st.path}")
        out = st.record_decision(item_id, verdict, annotator, edited_answer=answer, channel="cli", comment=comment,
                                 resolve=True)
        after = st.get(item_id, with_decisions=False)
    if out.result == "invalid":
        raise UserError(out.detail)
    typer.echo(f"{item_id}: {before.status} -> {after.status}" + (" (edited answer)" if after.final_answer
                                                                    and after.final_answer != after.item.answer else ""))


@app.command(help="Serve the review app (a web page in Chinese, English switchable) on this store. "
                  "Binds 127.0.0.1; any other address needs annotator tokens (`soaes review add-user`).")
def serve(
    config_arg: Optional[str] = typer.Argument(None, metavar="[CONFIG]", help=_CONFIG_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (127.0.0.1: this machine only)."),
    port: int = typer.Option(8080, "--port", help="TCP port."),
    set_: SetOpt = None,
    output: OutputOpt = None,
    config: Optional[str] = typer.Option(None, "--config", "-c", hidden=True, help="Deprecated: pass the config positionally."),
    store: Optional[str] = typer.Option(None, "--db", "--store", help=_STORE_HELP),
) -> None:
    from synthesis.review_app.server import serve as run_server

    path = _store_path(config_arg or config, set_, output, store)
    run_server(path, host=host, port=port)


@app.command("add-user", help="Add an annotator (or re-key one) for the review app; prints their token once.")
def add_user(
    config_or_name: Optional[str] = typer.Argument(None, metavar="[CONFIG]", help=_CONFIG_HELP),
    name: Optional[str] = typer.Argument(None, metavar="NAME", help="The annotator's name (shown on decisions)."),
    lead: bool = typer.Option(False, "--lead", help="May settle conflicts."),
    set_: SetOpt = None,
    output: OutputOpt = None,
    config: Optional[str] = typer.Option(None, "--config", "-c", hidden=True, help="Deprecated: pass the config positionally."),
    store: Optional[str] = typer.Option(None, "--db", "--store", help=_STORE_HELP),
) -> None:
    from corpora_manifests.errors import UserError

    cfg_arg, who = _two(config_or_name, name, "NAME")
    with _open(cfg_arg or config, set_, output, store) as st:
        try:
            token = st.add_user(who, "lead" if lead else "annotator")
        except ValueError as e:
            raise UserError(str(e)) from None
    typer.echo(f"{who} ({'lead' if lead else 'annotator'}) token: {token}")
    typer.echo("give it to them privately; it is shown only now (run add-user again to replace it)")
