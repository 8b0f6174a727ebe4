"""Toy reproduction of the paper's distillation effect on CPU, in one command.

    python scripts/distill_toy.py --out /work/toy_distill

1. teacher: tiny Qwen2 SFT on the demo SFT data      configs/demo/distill_teacher.yaml
2. capture its top-64 log-probs (delta_q8)           configs/demo/distill_capture.yaml
3. student (smaller) (a) SFT only                    configs/demo/distill_student_sft.yaml
                     (b) KD from the stored logits   configs/demo/distill_student_kd.yaml
   same data, same packed sequences, same steps, same optimiser and seed.
4. held-out (sft_stage2 validation): per-position KL(teacher || student) at τ = 1 over the real
   vocabulary (teacher-forced on the reference conversations) and ROUGE-L (jieba words) of the
   students' greedy answers against the teacher's greedy answers.

Outputs under --out: teacher/, student_sft/, student_kd/ (HF model dirs + tokenizer), logits/
(the distill_logits manifest), *_run/ (training runs), results.json. Finished steps are kept on a
re-run (each step is a resumable run of its own).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _copy_model(run_out: Path, dest: Path) -> Path:
    if not dest.exists():
        shutil.copytree((run_out / "final").resolve(), dest)
    return dest


def _train(config: str, out: Path, name: str, overrides: list[str]) -> tuple[Path, dict]:
    from training.config import load_train_config
    from training.curriculum import run_training

    cfg, text = load_train_config(REPO / config, [f"output_dir={out / (name + '_run')}", *overrides])
    t0 = time.perf_counter()
    run = run_training(cfg, config_text=text, command=f"scripts/distill_toy.py ({config})")
    rec = json.loads((run / "run.json").read_text())
    st = rec["stages"][-1]
    return _copy_model(run, out / name), {"seconds": round(time.perf_counter() - t0, 1), "steps": st["global_step"],
                                         "first_loss": next(h["loss"] for h in st_log(run) if "loss" in h),
                                         "final_loss": st["final_loss"]}


def st_log(run: Path) -> list[dict]:
    stage = sorted((run / "stages").iterdir())[-1]
    return json.loads((stage / "stage.json").read_text())["log_history"]


def _heldout(tokenizer):
    from training.chat_template import ChatEncoder
    from training.manifest_inputs import open_manifest

    src = open_manifest(REPO / "tests/fixtures/training/sft_stage2", "sft", split="validation")
    rows = list(src.iter_rows(columns=["id", "messages"]))
    enc = ChatEncoder(tokenizer)
    return rows, enc.encode([r["messages"] for r in rows])


def evaluate(out: Path, max_new_tokens: int = 96, students=("student_sft", "student_kd")) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from corpora_manifests.tokenizer import load_tokenizer
    from training.eval_metrics import Pair, compute_metrics

    tok = load_tokenizer("qwen2.5")
    n_real = len(tok)
    rows, encoded = _heldout(tok)
    models = {n: AutoModelForCausalLM.from_pretrained(out / n, attn_implementation="sdpa").eval()
              for n in ("teacher", *students)}
    res: dict = {"heldout_samples": len(rows), "kl_per_position": {}, "generations": {}}
    with torch.no_grad():
        kl = {n: [0.0, 0] for n in students}
        for e in encoded:
            ids = torch.from_numpy(e.input_ids.astype("int64"))[None]
            pos = torch.from_numpy((e.loss_mask[1:] == 1).nonzero()[0])
            t = torch.log_softmax(models["teacher"](ids).logits[0, pos, :n_real].float(), -1)
            for n in kl:
                s = torch.log_softmax(models[n](ids).logits[0, pos, :n_real].float(), -1)
                kl[n][0] += float((t.exp() * (t - s)).sum())
                kl[n][1] += len(pos)
        res["kl_per_position"] = {n: round(v[0] / v[1], 4) for n, v in kl.items()}
        gens = {n: [] for n in models}
        for r in rows:
            prompt = [m for m in r["messages"] if m["role"] != "assistant"][:2]
            ids = tok.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
            for n, m in models.items():
                g = m.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                               pad_token_id=tok.pad_token_id, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"))
                gens[n].append(tok.decode(g[0, ids.shape[1]:], skip_special_tokens=True))
    for n in students:
        pairs = [Pair(id=str(r["id"]), prediction=p, reference=t) for r, p, t in zip(rows, gens[n], gens["teacher"])]
        res.setdefault("rouge_vs_teacher", {})[n] = compute_metrics(pairs)
    res["generations"] = {n: g[:2] for n, g in gens.items()}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="demo_out/toy_distill", help="directory for the models and results")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--eval-only", nargs="+", metavar="STUDENT_DIR", default=None,
                    help="only evaluate these model directories under --out against teacher/")
    a = ap.parse_args(argv)
    out = Path(a.out).resolve()
    if a.eval_only:
        res = evaluate(out, students=tuple(a.eval_only))
        name = "results_" + "_".join(a.eval_only) + ".json"
        (out / name).write_text(json.dumps(res, indent=2, ensure_ascii=False))
        print(json.dumps({k: res[k] for k in ("kl_per_position", "rouge_vs_teacher")}, indent=1, ensure_ascii=False))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    import os

    os.chdir(REPO)  # the configs' manifest paths are relative to the repository
    summary: dict = {}
    _, summary["teacher"] = _train("configs/demo/distill_teacher.yaml", out, "teacher", [])
    from training.distill_capture import load_capture_config, run_capture

    cfg, text = load_capture_config(REPO / "configs/demo/distill_capture.yaml",
                                    [f"output_dir={out / 'logits'}", f"teacher={out / 'teacher'}", f"k={a.k}"])
    logits = run_capture(cfg, config_text=text, progress=False)
    d = json.loads((logits / "manifest.json").read_text())["stats"]["distill"]
    summary["capture"] = {"positions": d["positions"], "bytes_per_position": round(d["bytes_per_position"], 1),
                          "throughput": d["throughput"]}
    _, summary["student_sft"] = _train("configs/demo/distill_student_sft.yaml", out, "student_sft", [])
    _, summary["student_kd"] = _train("configs/demo/distill_student_kd.yaml", out, "student_kd",
                                      [f"stages.0.manifests=[{out / 'logits'}]"])
    summary["eval"] = evaluate(out)
    (out / "results.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    e = summary["eval"]
    print(json.dumps({k: summary[k] for k in ("teacher", "student_sft", "student_kd")}, indent=1))
    print(f"held-out KL(teacher||student) per position: SFT-only {e['kl_per_position']['student_sft']}, "
          f"KD {e['kl_per_position']['student_kd']}")
    for n in ("student_sft", "student_kd"):
        print(f"ROUGE-L vs teacher ({n}): {e['rouge_vs_teacher'][n]}")
    print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
