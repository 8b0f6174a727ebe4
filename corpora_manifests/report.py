"""The one report writer: self-contained HTML pages (matplotlib PNGs embedded as base64) in the
CPT report's style. The curation report, the stage reports and the pipeline report all use it."""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from .models import atomic_write_text

STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}th{text-align:left;padding-right:2em}"
         "td{padding-right:1.5em}img{max-width:100%}table.grid{border-collapse:collapse}"
         "table.grid td,table.grid th{border-bottom:1px solid #ddd;padding:.2em .8em .2em 0}"
         ".demo{background:#fff3cd;border:1px solid #e0b000;padding:.5em 1em}")


def esc(text: Any) -> str:
    return html.escape(str(text))


def png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# the first one installed renders the Chinese labels (scripts/system_deps.sh installs WenQuanYi Micro Hei)
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Source Han Sans SC",
             "SimHei", "Microsoft YaHei", "AR PL UMing CN")


def pyplot():
    """matplotlib.pyplot on the Agg backend, with a CJK font when one is installed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            plt.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
            plt.rcParams["font.family"] = "sans-serif"
            break
    return plt


def bar(plt, labels: list[str], values: list[float], title: str, xlabel: str) -> str:
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.35 * len(labels) + 1)))
    if labels:
        ax.barh(range(len(labels)), values, color="#4c72b0")
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
    else:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return png(fig)


def img(title: str, b64: str) -> str:
    return f"<img alt='{esc(title)}' src='data:image/png;base64,{b64}'>"


def kv_table(summary: dict[str, Any]) -> str:
    def fmt(v):
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else esc(v)

    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{fmt(v)}</td></tr>" for k, v in summary.items()) + "</table>"


def grid(header: list[str], rows: list[list[str]]) -> str:
    """A table whose cells are already HTML (escape text with ``esc``)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='grid'><tr>{head}</tr>{body}</table>"


def write_page(target: str | Path, title: str, body_html: str, stats: dict[str, Any] | None = None) -> Path:
    """Write one self-contained HTML page (0644, atomically)."""
    target = Path(target)
    tail = (f"<h2>Stats</h2><pre>{esc(json.dumps(stats, ensure_ascii=False, indent=2))}</pre>" if stats else "")
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
           f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{body_html}{tail}</body></html>")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, doc)
    return target
