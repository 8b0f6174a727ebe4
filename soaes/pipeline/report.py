"""One HTML report for a whole pipeline run (``<root>/report.html``): every stage's status, counts,
drop reasons, plots, links to its manifests and own report, and the training loss curves. Written
with the one report writer (corpora_manifests.report)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from corpora_manifests.report import bar, esc, grid, img, kv_table, png, pyplot, write_page

from . import Pipeline, pipeline_status
from .kinds import DEMO_ANNOTATOR, get_kind


def _link(root: Path, target: Path, label: str | None = None) -> str:
    if not Path(target).exists():
        return esc(label or Path(target).name) + " (missing)"
    rel = os.path.relpath(target, root)
    return f"<a href='{esc(rel)}'>{esc(label or rel)}</a>"


def _manifest(d: Path):
    from corpora_manifests.models import load_manifest

    try:
        return load_manifest(d)
    except Exception:  # noqa: BLE001 - a stage not run yet has none
        return None


def _reasons(stats: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    rej = stats.get("rejects") or {}
    for k, v in rej.items():
        if isinstance(v, dict):
            for reason, n in v.items():
                out[f"{k}: {reason}"] = out.get(f"{k}: {reason}", 0) + int(n)
        elif isinstance(v, int):
            out[k] = out.get(k, 0) + v
    for reason, n in (stats.get("drop_reasons") or {}).items():
        out[reason] = out.get(reason, 0) + int(n)
    dedup = stats.get("dedup") or {}
    for key, label in (("removed_exact", "dedup: exact duplicate"), ("removed_near", "dedup: near duplicate")):
        if dedup.get(key):
            out[label] = dedup[key]
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _manifest_section(plt, root: Path, name: str, dirs: dict[str, Path]) -> tuple[str, list[list[str]]]:
    parts, rows = [], []
    for label, d in dirs.items():
        m = _manifest(d)
        if m is None:
            continue
        rows.append([esc(f"{name}/{label}" if label else name), esc(m.stage), f"{m.totals.records:,}",
                     f"{m.totals.tokens:,}", f"{m.totals.shards}", _link(root, d / "manifest.json", "manifest.json")])
        reasons = _reasons(m.stats)
        if reasons and label in ("", "sft_stage2"):
            labels = list(reasons)[:15]
            parts.append(img("drop reasons", bar(plt, labels, [reasons[k] for k in labels],
                                                 f"{name}: dropped records by reason", "records")))
        for key in ("domain_distribution_kept", "language_distribution_kept"):
            dist = m.stats.get(key)
            if dist and label == "":
                parts.append(img(key, bar(plt, list(dist), list(dist.values()), f"{name}: {key.replace('_', ' ')}",
                                          "records")))
    return "".join(parts), rows


def _loss_section(plt, root: Path, run_dir: Path, name: str) -> tuple[str, dict[str, Any]]:
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        return "", {}
    run = json.loads(run_json.read_text(encoding="utf-8"))
    steps, losses, bounds = [], [], []
    offset = 0
    for st in run.get("stages", []):
        sj = Path(st["model_dir"]).parent / "stage.json"
        hist = json.loads(sj.read_text(encoding="utf-8")).get("log_history", []) if sj.is_file() else []
        pts = [(h["step"], h["loss"]) for h in hist if "loss" in h and "step" in h]
        steps += [offset + s for s, _ in pts]
        losses += [float(v) for _, v in pts]
        offset += int(st.get("global_step") or (pts[-1][0] if pts else 0))
        bounds.append((offset, st["stage"]))
    summary = {}
    if losses:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot(steps, losses, marker="o", ms=3, color="#c44e52")
        for x, label in bounds[:-1]:
            ax.axvline(x + 0.5, color="#999", ls="--")
        ax.set_title(f"{name}: training loss ({' → '.join(b[1] for b in bounds)})")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        summary = {"first loss": round(losses[0], 3), "last loss": round(losses[-1], 3), "steps": steps[-1]}
        return img("loss", png(fig)), summary
    return "", summary


def write_pipeline_report(p: Pipeline, demo: bool = False) -> Path:
    plt = pyplot()
    root = p.root
    statuses = pipeline_status(p)
    overview, manifest_rows, sections, training = [], [], [], []
    for name in p.order:
        ctx = p.contexts[name]
        kind = get_kind(ctx.spec.kind)
        outs = {k: Path(v) for k, v in kind.outputs(ctx).items()}
        st = statuses[name]
        state = "waiting for review" if st.state == "waiting" else st.state
        links = []
        main = outs.get("dir", outs.get(""))
        for rep in ("report.html", "report.md"):
            if main is not None and (main / rep).is_file() and ctx.spec.kind != "review":
                links.append(_link(root, main / rep, f"{name}/{rep}" if ctx.spec.kind != "review" else rep))
        body = ""
        if ctx.spec.kind in ("curate", "filters", "synth", "distill_capture"):
            dirs = {k: v for k, v in outs.items() if k != "dir"}
            if "sft_stage2" in dirs:
                dirs.pop("")
            body, rows = _manifest_section(plt, root, name, dirs)
            manifest_rows += rows
        elif ctx.spec.kind == "review":
            body = _review_section(ctx)
        elif ctx.spec.kind == "eval":
            from training.eval_stage import report_section

            body = report_section(outs[""])
            links.append(_link(root, outs[""] / "compare" / "compare.md", f"{name}/compare.md"))
        elif ctx.spec.kind == "train":
            body, summary = _loss_section(plt, root, outs[""], name)
            links.append(_link(root, outs[""] / "run.json", f"{name}/run.json"))
            if summary:
                body = kv_table(summary) + body
        overview.append([esc(name), esc(ctx.spec.kind), esc(state), " · ".join(links)])
        (training if ctx.spec.kind == "train" else sections).append(f"<h2 id='{esc(name)}'>{esc(name)} <small>({esc(ctx.spec.kind)}: {esc(kind.description)})"
                        f"</small></h2>{body}")
    intro = ""
    if demo:
        intro = ("<p class='demo'><b>Demo run.</b> Inputs are the bundled sample; the Q&amp;A pairs were approved "
                 f"automatically by <code>{DEMO_ANNOTATOR}</code> (recorded as such in the review store, every "
                 "SFT row's <code>review.annotators</code> and the manifests) — <b>no person reviewed them</b>. The "
                 "model is a tiny random Qwen2: the loss curves show the machinery learning, not a useful model.</p>")
    body = (intro + f"<p>pipeline <code>{esc(p.path)}</code>, root <code>{esc(root)}</code>; stage logs: "
            + _link(root, root / "pipeline.log", "pipeline.log") + "</p>"
            + grid(["stage", "kind", "status", "outputs"], overview)
            + "<h2>Manifests</h2>" + grid(["manifest", "stage", "records", "tokens", "shards", "file"], manifest_rows)
            + "".join(training) + "".join(sections))
    return write_page(root / "report.html", f"{p.config.name} — pipeline report", body)


def _review_section(ctx) -> str:
    from synthesis.store import ReviewStore

    synth = next(u for u in ctx.upstream.values() if u.spec.kind == "synth")
    path = Path(synth.config.store_path)
    if not path.exists():
        return "<p>no review store yet</p>"
    with ReviewStore(path, readonly=True) as store:
        counts = store.status_counts()
        annotators = {a["annotator"]: a["items"] for a in store.annotators()}
    summary = {k: v for k, v in counts.items() if isinstance(v, int)}
    summary.update({f"items decided by {k}" + (" (DEMO, not a person)" if k == DEMO_ANNOTATOR else ""): v
                    for k, v in annotators.items()})
    return kv_table(summary)
