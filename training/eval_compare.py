"""`soaes eval compare`: the paper's Table 2 — ROUGE-1/2/L and BLEU-4 per model or stage, side by side.

Every run is scored **now** from its predictions, on the ids that all runs answered (so the rows
are comparable); the Markdown, JSON and bar chart state the metric definitions and the row counts.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from corpora_manifests.errors import UserError

METRICS = ("rouge-1", "rouge-2", "rouge-l", "bleu-4")
HEADERS = {"rouge-1": "ROUGE-1", "rouge-2": "ROUGE-2", "rouge-l": "ROUGE-L", "bleu-4": "BLEU-4"}
DEFINITIONS = [
    "ROUGE-1/2/L: F1 on jieba words (rouge-chinese), per answer, averaged, x100; an empty answer scores 0.",
    "BLEU-4: corpus BLEU on characters (sacrebleu tokenize=\"zh\", = LLaMA-Factory's character BLEU), x100.",
]


def resolve_run(run: Path) -> tuple[Path, str]:
    """A run is a `soaes eval generate` output directory or a predictions JSONL; returns (file, label)."""
    from .eval_generate import PREDICTIONS, RUN_FILE

    run = Path(run)
    if run.is_dir():
        pred = run / PREDICTIONS
        if not pred.exists():
            raise UserError(f"{run} has no {PREDICTIONS} (run `soaes eval generate` first)")
        label = run.name
        if (run / RUN_FILE).exists():
            label = json.loads((run / RUN_FILE).read_text(encoding="utf-8")).get("label") or label
        return pred, label
    if not run.exists():
        raise UserError(f"run not found: {run}")
    return run, run.stem


def compare_runs(runs: list[Path], labels: list[str] | None = None, references: dict[str, str] | None = None,
                 common_ids: bool = True) -> dict:
    from .eval_metrics import compute_metrics, load_pairs

    if labels and len(labels) != len(runs):
        raise UserError(f"{len(labels)} labels for {len(runs)} runs")
    loaded = []
    for i, run in enumerate(runs):
        path, label = resolve_run(run)
        lp = load_pairs(path, references)
        if not lp.pairs:
            raise UserError(f"no scorable records in {path} ({len(lp.rejected)} rejected)")
        loaded.append((labels[i] if labels else label, path, lp))
    ids = set.intersection(*({p.id for p in lp.pairs} for _, _, lp in loaded)) if common_ids else None
    if common_ids and not ids:
        raise UserError("the runs share no answered id; compare runs over the same eval manifest")
    rows = []
    for label, path, lp in loaded:
        pairs = [p for p in lp.pairs if ids is None or p.id in ids]
        rows.append({"label": label, "predictions": str(path), **compute_metrics(pairs),
                     "answered": len(lp.pairs), "rejected": len(lp.rejected)})
    return {"rows": rows, "common_ids": len(ids) if ids is not None else None, "definitions": DEFINITIONS}


def to_markdown(result: dict) -> str:
    rows = result["rows"]
    best = {m: max(r[m] for r in rows) for m in METRICS}
    lines = ["| Model / stage | " + " | ".join(HEADERS[m] for m in METRICS) + " | n |",
             "|---|" + "---:|" * (len(METRICS) + 1)]
    for r in rows:
        # bold the best of a column, unless every row ties (nothing to single out)
        cells = [f"**{r[m]:.2f}**" if r[m] == best[m] and any(o[m] != best[m] for o in rows) else f"{r[m]:.2f}"
                 for m in METRICS]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {r['n']} |")
    notes = [""]
    if result.get("common_ids") is not None:
        notes.append(f"Scored on the {result['common_ids']} ids answered by every run; best per column in bold.")
    notes += [f"- {d}" for d in result["definitions"]]
    return "\n".join(lines + notes) + "\n"


def plot(result: dict, path: Path) -> None:
    from corpora_manifests.report import pyplot

    plt = pyplot()  # a CJK font: run labels are often Chinese (阶段二, 渐进式)
    rows = result["rows"]
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(METRICS), 3.6))
    for i, r in enumerate(rows):
        xs = [j + i * width for j in range(len(METRICS))]
        ax.bar(xs, [r[m] for m in METRICS], width, label=r["label"])
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(METRICS))])
    ax.set_xticklabels([HEADERS[m] for m in METRICS])
    ax.set_ylabel("score (x100)")
    ax.set_title("ROUGE on jieba words, BLEU-4 on characters", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def write_outputs(result: dict, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "compare.md", "json": out / "compare.json", "plot": out / "compare.png"}
    for key, text in (("markdown", to_markdown(result)), ("json", json.dumps(result, ensure_ascii=False, indent=2))):
        tmp = paths[key].with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, paths[key])
    plot(result, paths["plot"])
    return paths
