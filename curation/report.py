"""HTML stats report of a produced corpus: length distribution, drop reasons, cluster sizes, tokens
per source. Plots are matplotlib PNGs embedded as base64 so the report is one self-contained file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from corpora_manifests.report import bar as _bar_plot, esc, img, kv_table, png as _png, pyplot, write_page


def _font_setup():
    return pyplot()


def _bar(plt, labels, values, title, xlabel):
    return _bar_plot(plt, labels, values, title, xlabel)


def write_report(out: str | Path, shard_paths: list[str], stats: dict[str, Any], title: str = "corpus") -> Path:
    import numpy as np
    import polars as pl

    plt = _font_setup()
    out = Path(out)
    if shard_paths:
        df = (pl.scan_parquet([str(out / p) for p in shard_paths])
              .select(pl.col("source"), pl.col("n_tokens"), pl.col("text").str.len_chars().alias("chars"))
              .collect())
    else:
        df = pl.DataFrame(schema={"source": pl.String, "n_tokens": pl.Int64, "chars": pl.UInt32})
    sections = []

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for ax, col, label in ((axes[0], "chars", "characters"), (axes[1], "n_tokens", "Qwen2.5 tokens")):
        vals = df[col].to_numpy() if len(df) else np.array([])
        if len(vals):
            bins = np.logspace(0, np.log10(max(vals.max(), 10)), 40)
            ax.hist(np.maximum(vals, 1), bins=bins, color="#55a868")
            ax.set_xscale("log")
        ax.set_title(f"document length ({label})")
        ax.set_xlabel(label)
        ax.set_ylabel("documents")
    sections.append(("Length distribution (kept documents)", _png(fig)))

    reasons: dict[str, int] = {}
    for stage, counts in (stats.get("rejects") or {}).items():
        for reason, n in counts.items():
            reasons[f"{stage}: {reason}"] = reasons.get(f"{stage}: {reason}", 0) + n
    dedup = stats.get("dedup") or {}
    if dedup.get("removed_exact"):
        reasons["dedup: exact duplicate"] = dedup["removed_exact"]
    if dedup.get("removed_near"):
        reasons["dedup: near duplicate"] = dedup["removed_near"]
    items = sorted(reasons.items(), key=lambda kv: -kv[1])
    sections.append(("Drop reasons", _bar(plt, [k for k, _ in items], [v for _, v in items], "dropped documents", "documents")))

    hist = {int(k): v for k, v in (dedup.get("cluster_size_histogram") or {}).items()}
    fig, ax = plt.subplots(figsize=(7, 3))
    if hist:
        ax.bar([str(k) for k in sorted(hist)], [hist[k] for k in sorted(hist)], color="#c44e52")
    else:
        ax.text(0.5, 0.5, "no duplicate clusters", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("duplicate cluster sizes")
    ax.set_xlabel("documents in cluster")
    ax.set_ylabel("clusters")
    sections.append(("Cluster sizes", _png(fig)))

    per_source = (df.group_by("source").agg(pl.col("n_tokens").sum()).sort("n_tokens", descending=True)
                  if len(df) else pl.DataFrame({"source": [], "n_tokens": []}))
    sections.append(("Tokens per source", _bar(plt, [str(s) for s in per_source["source"].to_list()],
                                                per_source["n_tokens"].to_list(), "tokens per source", "tokens")))

    summary = {
        "documents kept": len(df),
        "tokens kept": int(df["n_tokens"].sum()) if len(df) else 0,
        "characters kept": int(df["chars"].sum()) if len(df) else 0,
        "documents removed by dedup": dedup.get("removed_documents", 0),
        "tokens removed by dedup": dedup.get("removed_tokens", 0),
        "bytes removed by dedup": dedup.get("removed_bytes", 0),
        "rejected records": sum(sum(c.values()) for c in (stats.get("rejects") or {}).values()),
    }
    body = kv_table(summary) + "".join(f"<h2>{esc(t)}</h2>{img(t, b64)}" for t, b64 in sections)
    return write_page(out / "report.html", title, body, stats)
