"""`soaes demo`: the main job on the bundled sample, offline, every stage end to end.

CPT corpus (curate run) → SFT stage 1 (filters run) → SFT stage 2 + eval split from the CPT
manifest (synth run, `rules` generator) → every manifest verified → a two-stage SFT curriculum of a
tiny Qwen2 on the stage-1 and stage-2 manifests (DeepSpeed ZeRO-3 on CPU) → summary.
The configs are the ones in configs/demo/, with outputs redirected under ``--output``.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def _in_repo():
    # The demo configs name fixtures relative to the repository root.
    prev = Path.cwd()
    os.chdir(REPO)
    try:
        yield
    finally:
        os.chdir(prev)


def run_demo(output: str | Path) -> int:
    from rich.console import Console
    from rich.table import Table

    from corpora_manifests.errors import UserError
    from corpora_manifests.models import load_manifest
    from corpora_manifests.shards import verify_manifest

    import warnings

    # torch.distributed deprecation notices from DeepSpeed's gloo path would bury the demo output.
    warnings.filterwarnings("ignore", category=FutureWarning)
    con = Console()
    out = Path(output).resolve()
    configs = REPO / "configs" / "demo"
    if not (REPO / "tests" / "fixtures").exists() or not configs.exists():
        raise UserError(f"the bundled sample is not here ({REPO}/tests/fixtures); run the demo from a clone of the repository")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def step(name: str):
        con.rule(f"[bold]{name}")
        return time.perf_counter()

    with _in_repo():
        t = step("1/5 CPT corpus: extract → clean → quality → PII → dedup → tokens → shards")
        from corpora_manifests.config import load_config
        from curation.pipelines.run import CurateRunConfig, run_curate

        cfg_path = configs / "curate_run.yaml"
        cfg, text = load_config(cfg_path, CurateRunConfig, [f"output={out / 'cpt'}"])
        cpt = run_curate(cfg, config_text=text, command="soaes demo (curate)")
        timings["cpt"] = time.perf_counter() - t

        t = step("2/5 SFT stage 1: read → language ID → domain classifier → dedup → decontaminate")
        from filters.pipeline import run_filters

        stage1 = run_filters(configs / "filters_stage1.yaml", [f"output={out / 'sft_stage1'}"],
                             command="soaes demo (filters)")
        timings["sft_stage1"] = time.perf_counter() - t

        t = step("3/5 SFT stage 2: chunk CPT documents → rules Q&A → validate → splits")
        from synthesis.pipeline import run_synthesis

        stage2 = run_synthesis(configs / "synth_stage2.yaml",
                               [f"output_dir={out / 'sft_stage2'}", "source.kind=manifest", f"source.path={cpt}"],
                               command="soaes demo (synth)")
        timings["sft_stage2"] = time.perf_counter() - t

        t = step("4/5 verify every manifest (re-hash all shards)")
        produced = [cpt, stage1] + sorted({p.parent for p in Path(stage2).rglob("manifest.json")})
        table = Table("manifest", "stage", "shards", "records", "tokens", "verified")
        for d in produced:
            m = load_manifest(d)
            problems = verify_manifest(d, m)
            if problems:
                raise UserError(f"{d}: " + "; ".join(map(str, problems)))
            table.add_row(str(Path(d).relative_to(out)), m.stage, str(m.totals.shards),
                          f"{m.totals.records:,}", f"{m.totals.tokens:,}", "ok")
        timings["verify"] = time.perf_counter() - t

        t = step("5/5 train: SFT stage 1 → SFT stage 2 (tiny Qwen2, DeepSpeed ZeRO-3, CPU)")
        from training.curriculum import run_training

        stage2_train = _manifest_with_stage(produced, "sft_stage2")
        train_out = run_training(configs / "train_sft.yaml", [
            f"output_dir={out / 'train'}",
            f"stages.0.manifests=[{stage1}]",
            f"stages.1.manifests=[{stage2_train}]",
            # A few optimizer steps per stage show the curriculum, checkpoints and hand-over on a
            # CPU in about a minute; the full configs are configs/train_*.yaml.
            "stages.0.max_steps=2", "stages.1.max_steps=2", "seq_len=512",
        ], command="soaes demo (train)")
        timings["train"] = time.perf_counter() - t

    con.rule("[bold]summary")
    con.print(table)
    con.print(f"training run: {train_out}")
    con.print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    con.print(f"everything is under {out}; inspect a corpus with: soaes manifest show {cpt}")
    return 0


def _manifest_with_stage(dirs, stage: str) -> Path:
    from corpora_manifests.errors import UserError
    from corpora_manifests.models import load_manifest

    for d in dirs:
        if load_manifest(d).stage == stage:
            return Path(d)
    raise UserError(f"no {stage} manifest was produced")
