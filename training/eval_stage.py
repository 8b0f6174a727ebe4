"""The pipeline's ``eval`` stage kind: generate → score → compare for every stage of the trained runs it
is given (Table 2), and specbench for a distilled draft against its target (Tables 4–6), into the
run's report.

    - name: eval
      kind: eval
      config: eval.yaml                     # or only `set:` keys
      inputs: {data: review/eval, runs: [train_sft]}
      set: {specbench: {target: ..., draft: ...}}   # optional; `inputs: {specbench.draft: distill/final}`

Finished = ``eval.json`` records the same effective config and the outputs it lists exist.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from corpora_manifests.errors import UserError


class SpecbenchStageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str
    draft: str
    n: list[int] = Field(default_factory=lambda: [3, 5])
    modes: list[str] = Field(default_factory=lambda: ["greedy", "top-p"])
    top_p: float = 0.7
    max_new_tokens: int = 64
    limit: int = 10


class EvalStageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_dir: str
    data: str = Field(description="eval manifest directory (the synth stage's eval output)")
    split: str = "test"
    runs: list[str] = Field(default_factory=list, description="training run dirs: every stage's model is evaluated")
    models: dict[str, str] = Field(default_factory=dict, description="extra rows: label -> model directory")
    max_new_tokens: int = 128
    batch_size: int = 8
    top_p: Optional[float] = None
    specbench: Optional[SpecbenchStageConfig] = None


LOCATION_KEYS = ("output_dir",)


def stage_models(cfg: EvalStageConfig) -> dict[str, Path]:
    """label -> model dir: each run's stages in order (from its run.json), then the extra models."""
    out: dict[str, Path] = {}
    for run in cfg.runs:
        rj = Path(run) / "run.json"
        if not rj.is_file():
            raise UserError(f"eval stage: {run} has no run.json (is it a finished training run?)")
        for st in json.loads(rj.read_text(encoding="utf-8")).get("stages", []):
            out[f"{Path(run).name}/{st['stage']}"] = Path(st["model_dir"])
    out.update({k: Path(v) for k, v in cfg.models.items()})
    if not out:
        raise UserError("eval stage: no model to evaluate (give runs: [...] or models: {label: dir})")
    return out


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label)


def outputs(out: Path, cfg: EvalStageConfig) -> dict[str, Path]:
    res = {"": out, "compare": out / "compare" / "compare.json"}
    if cfg.specbench:
        res["specbench"] = out / "specbench" / "specbench.json"
    return res


def check(out: Path, cfg: EvalStageConfig):
    from corpora_manifests.runs import check_run, effective_config

    rec_path = out / "eval.json"
    if not rec_path.is_file():
        return check_run(out, {}, None)
    recorded = json.loads(rec_path.read_text(encoding="utf-8"))
    problems = [f"{k} missing" for k, p in outputs(out, cfg).items() if k and not p.is_file()]
    return check_run(out, effective_config(cfg.model_dump(mode="json"), LOCATION_KEYS), recorded, problems)


def run_eval_stage(cfg: EvalStageConfig, force: bool = False) -> Path:
    from corpora_manifests.models import atomic_write_text
    from corpora_manifests.runs import config_hash, effective_config, redact_credentials, reset_output

    from .eval_compare import compare_runs, write_outputs
    from .eval_generate import GenSettings, generate_predictions
    from .specbench import SpecbenchSettings, specbench, to_markdown

    out = Path(cfg.output_dir)
    if force:
        reset_output(out)
    settings = GenSettings(greedy=cfg.top_p is None, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens)
    runs, labels = [], []
    for label, model in stage_models(cfg).items():
        gen_out = out / "generate" / _safe(label)
        generate_predictions(model, Path(cfg.data), gen_out, settings, split=cfg.split, batch_size=cfg.batch_size,
                             label=label, force=force)
        runs.append(gen_out)
        labels.append(label)
    write_outputs(compare_runs(runs, labels), out / "compare")
    if cfg.specbench:
        sb = cfg.specbench
        res = specbench(Path(sb.target), Path(sb.draft), Path(cfg.data),
                        SpecbenchSettings(ns=tuple(sb.n), modes=tuple(sb.modes), top_p=sb.top_p,
                                          max_new_tokens=sb.max_new_tokens, limit=sb.limit), split=cfg.split)
        (out / "specbench").mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "specbench" / "specbench.json", json.dumps(res, ensure_ascii=False, indent=2))
        atomic_write_text(out / "specbench" / "specbench.md", to_markdown(res))
    eff = effective_config(cfg.model_dump(mode="json"), LOCATION_KEYS)
    atomic_write_text(out / "eval.json", json.dumps({"config": redact_credentials(eff), "config_sha256": config_hash(eff),
                                                     "rows": labels}, ensure_ascii=False, indent=2))
    return out


def report_section(out: Path) -> str:
    """HTML for the pipeline report: the Table-2 comparison (table + plot) and the specbench table."""
    import base64

    from corpora_manifests.report import esc, grid, img

    parts = []
    cj = out / "compare" / "compare.json"
    if cj.is_file():
        res = json.loads(cj.read_text(encoding="utf-8"))
        rows = [[esc(r["label"]), *(f"{r[m]:.2f}" for m in ("rouge-1", "rouge-2", "rouge-l", "bleu-4")), str(r["n"])]
                for r in res["rows"]]
        parts.append("<h3>Table 2: generation quality on the eval split</h3>"
                     + grid(["model / stage", "ROUGE-1", "ROUGE-2", "ROUGE-L", "BLEU-4", "n"], rows)
                     + "<ul>" + "".join(f"<li>{esc(d)}</li>" for d in res["definitions"]) + "</ul>")
        pngf = out / "compare" / "compare.png"
        if pngf.is_file():
            parts.append(img("ROUGE/BLEU per stage", base64.b64encode(pngf.read_bytes()).decode()))
    sj = out / "specbench" / "specbench.json"
    if sj.is_file():
        res = json.loads(sj.read_text(encoding="utf-8"))
        fmt = lambda v, f: "–" if v is None else f.format(v)  # noqa: E731
        rows = [[esc(r["mode"]), esc(r["method"]), fmt(r["n"], "{}"), fmt(r["acceptance_rate"], "{:.1%}"),
                 fmt(r["mean_accepted_length"], "{:.2f}"), fmt(r["tokens_per_s"], "{:.1f}"), fmt(r["speedup"], "{:.2f}x")]
                for r in res["rows"]]
        parts.append("<h3>Speculative decoding (batch size 1)</h3>"
                     + grid(["mode", "method", "n", "acceptance", "mean accepted len", "tokens/s", "speedup"], rows)
                     + f"<p>self-checks: {'all passed' if res['trustworthy'] else '<b>FAILED — figures not trustworthy</b>'}</p>")
    return "".join(parts) or "<p>not run yet</p>"
