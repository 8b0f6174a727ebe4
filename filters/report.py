"""The stage-1 report: language and domain distributions, drop reasons, examples of each reason.

Written as ``report.md`` (readable in any viewer and in code review) and ``report.html`` (the same
content plus bar charts from matplotlib, embedded as PNG) next to the manifest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def _table(title: str, d: dict, total: int | None = None) -> list[str]:
    lines = [f"### {title}", "", "| value | count | share |", "|---|---:|---:|"]
    total = total or sum(d.values()) or 1
    for k, v in d.items():
        lines.append(f"| {k} | {v:,} | {100 * v / total:.1f} % |")
    return lines + [""]


def _esc(s: Any, n: int = 200) -> str:
    return str(s).replace("\n", " ⏎ ").replace("|", "\\|")[:n]


def render_markdown(manifest, summary: dict[str, Any]) -> str:
    st = summary["stats"]
    lines = [f"# SFT stage 1 report: {manifest.name}", "",
             f"- records read: **{st['records_read']:,}**, kept: **{st['records_kept']:,}**, "
             f"dropped: **{st['records_dropped']:,}**",
             f"- shards: {manifest.totals.shards}, tokens (Qwen2.5, message contents): {manifest.totals.tokens:,}",
             f"- config sha256: `{manifest.producer.config_sha256}`", ""]
    lines += ["## Drop reasons", ""] + _table("by reason", st["drop_reasons"], st["records_read"])
    lines += _table("by step", st["dropped_by_step"], st["records_read"])
    lines += ["## Language", ""] + _table("all identified samples", st["language_distribution"])
    lines += _table("kept samples", st["language_distribution_kept"])
    lines += ["## Domain", ""] + _table("all classified samples", st["domain_distribution"])
    lines += _table("kept samples", st["domain_distribution_kept"])
    lines += _table("kept samples: decided by", st["domain_decided_by_kept"])
    lines += ["## Per source", "", "| source | kept | rejected |", "|---|---:|---:|"]
    for src, c in st["per_source"].items():
        lines.append(f"| {src} | {c.get('kept', 0):,} | {c.get('rejected', 0):,} |")
    lines += ["", "## Examples of each drop reason", ""]
    for reason, exs in summary["examples"].items():
        lines += [f"### {reason}", ""]
        for e in exs:
            extra = ", ".join(f"{k}={_esc(v, 60)}" for k, v in e.items() if k not in ("id", "excerpt", "source"))
            lines.append(f"- `{e.get('id')}` ({e.get('source', '')}) {extra}  \n  > {_esc(e.get('excerpt', ''))}")
        lines.append("")
    return "\n".join(lines)


def write_report(out: Path, manifest, summary: dict[str, Any]) -> None:
    """report.md plus report.html through the one report writer (corpora_manifests.report)."""
    from corpora_manifests.models import atomic_write_text
    from corpora_manifests.report import bar, esc, img, pyplot, write_page

    md = render_markdown(manifest, summary)
    atomic_write_text(out / "report.md", md)
    st = summary["stats"]
    plt = pyplot()
    charts = []
    for title, key in (("drop reasons", "drop_reasons"), ("language (all)", "language_distribution"),
                       ("domain (all)", "domain_distribution")):
        if st[key]:
            items = list(st[key].items())[:15]
            charts.append(img(title, bar(plt, [str(k) for k, _ in items], [v for _, v in items], title, "records")))
    write_page(out / "report.html", f"SFT stage 1 report: {manifest.name}",
               "".join(charts) + f"<pre style='white-space:pre-wrap'>{esc(md)}</pre>")
