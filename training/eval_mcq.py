"""`soaes eval mcq`: multiple-choice accuracy on CMMLU / C-Eval formatted local CSV files (Table 1).

Data layout (the two benchmarks' own releases, one CSV per subject):

- CMMLU: ``DIR/test/<subject>.csv`` and ``DIR/dev/<subject>.csv``, columns ``Question,A,B,C,D,Answer``;
- C-Eval: ``DIR/val/<subject>_val.csv`` (or ``test``) and ``DIR/dev/<subject>_dev.csv``, columns
  ``id,question,A,B,C,D,answer[,explanation]``.

Column names are matched case-insensitively. A row whose answer is not one of A–D or whose
question/option is empty is rejected with its reason (counted in the result), never dropped silently.

Protocol = lm-evaluation-harness's ``cmmlu``/``ceval-valid`` tasks: the subject's description
("以下是关于…的单项选择题，请直接给出正确答案的选项。" — taken from lm-eval's own task files when the
subject is one of theirs), k examples from dev (first k), then
``<question>\\nA. …\\nB. …\\nC. …\\nD. …\\n答案：``; the choices " A" … " D" are scored by
log-likelihood and the highest wins (``acc``). Engine ``lm-eval`` runs the harness itself on the
local files (tasks generated with ``dataset_path: csv``); engine ``native`` is this module's
re-implementation of the same protocol (context building and lm-eval's context/continuation
tokenisation), used when lm-eval is not installed and tested against it. Overall accuracy is the
micro average over all questions (lm-eval's group aggregation, weighted by size); the macro mean
over subjects is reported beside it.
"""
from __future__ import annotations

import csv
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from corpora_manifests.errors import UserError

LETTERS = ("A", "B", "C", "D")
GENERIC_DESCRIPTION = "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n"
FEWSHOT_DELIMITER = "\n\n"
TARGET_DELIMITER = " "


@dataclass
class Subject:
    name: str
    test: list[dict] = field(default_factory=list)
    dev: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    description: str = ""


def doc_to_text(doc: dict) -> str:
    return f"{doc['question'].strip()}\nA. {doc['A']}\nB. {doc['B']}\nC. {doc['C']}\nD. {doc['D']}\n答案："


def _read_csv(path: Path, subject: str, split: str, rejected: list[dict]) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        for i, raw in enumerate(csv.DictReader(f), 1):
            rec = {(k or "").strip().lower(): (v or "") for k, v in raw.items()}
            doc = {"question": rec.get("question", ""), **{L: rec.get(L.lower(), "") for L in LETTERS},
                   "answer": rec.get("answer", "").strip().upper()}
            where = {"subject": subject, "split": split, "row": i}
            if not doc["question"].strip():
                rejected.append({**where, "reason": "empty_question"})
            elif any(not doc[L].strip() for L in LETTERS):
                rejected.append({**where, "reason": "empty_option"})
            elif doc["answer"] not in LETTERS:
                rejected.append({**where, "reason": "answer_not_a_to_d", "answer": doc["answer"][:20]})
            else:
                rows.append(doc)
    return rows


def _find(dirpath: Path, subject_files: dict[str, Path], suffix: str) -> None:
    for p in sorted(dirpath.glob("*.csv")):
        name = p.stem[: -len(suffix)] if suffix and p.stem.endswith(suffix) else p.stem
        subject_files[name] = p


def load_subjects(data: Path, split: str | None = None) -> dict[str, Subject]:
    data = Path(data)
    if not data.is_dir():
        raise UserError(f"MCQ data directory not found: {data}")
    splits = [split] if split else ["test", "val"]
    test_files: dict[str, Path] = {}
    for s in splits:
        _find(data / s, test_files, f"_{s}")
        if test_files:
            break
    if not test_files and not split:
        _find(data, test_files, "")  # flat: DIR/<subject>.csv
    if not test_files:
        raise UserError(f"no subject CSVs in {data} (expected {'/'.join(splits)}/<subject>.csv and dev/<subject>.csv)")
    dev_files: dict[str, Path] = {}
    _find(data / "dev", dev_files, "_dev")
    subjects = {}
    for name, path in test_files.items():
        sub = Subject(name=name, description=subject_description(name))
        sub.test = _read_csv(path, name, "test", sub.rejected)
        if name in dev_files:
            sub.dev = _read_csv(dev_files[name], name, "dev", sub.rejected)
        subjects[name] = sub
    return subjects


def subject_description(subject: str) -> str:
    """lm-eval's description for a CMMLU/C-Eval subject (from its installed task files), else the generic one."""
    try:
        import lm_eval
    except ImportError:
        return GENERIC_DESCRIPTION.format(subject=subject)
    import yaml

    tasks = Path(lm_eval.__file__).parent / "tasks"
    for path in (tasks / "cmmlu" / f"cmmlu_{subject}.yaml", tasks / "ceval" / f"ceval-valid_{subject}.yaml"):
        if path.exists():
            desc = yaml.safe_load(path.read_text(encoding="utf-8")).get("description")
            if desc:
                return desc
    return GENERIC_DESCRIPTION.format(subject=subject)


def build_context(sub: Subject, doc: dict, shots: int) -> str:
    """lm-eval's plain-text fewshot context for a multiple_choice task (first_n sampler)."""
    parts = [sub.description]
    for ex in sub.dev[:shots]:
        parts.append(doc_to_text(ex) + TARGET_DELIMITER + ex["answer"] + FEWSHOT_DELIMITER)
    parts.append(doc_to_text(doc))
    return "".join(parts)


# ---------------------------------------------------------------- native engine

def _encode_pair(tok, context: str, continuation: str) -> tuple[list[int], list[int]]:
    # lm-eval (api/model.py _encode_pair, causal): trailing spaces move to the continuation, the
    # whole string is encoded and split at the context's length.
    n = len(context) - len(context.rstrip())
    if n:
        continuation, context = context[-n:] + continuation, context[:-n]
    whole = tok.encode(context + continuation, add_special_tokens=False)
    ctx = tok.encode(context, add_special_tokens=False)
    return ctx, whole[len(ctx):]


def _loglikelihoods(model, tok, context: str, choices: list[str]) -> list[float]:
    """Sum of log p(continuation tokens | context) per choice, as lm-eval's HFLM computes it.

    Only the continuation positions' logits are computed (``logits_to_keep``); choices that share
    the context encoding and are one token long share one forward pass.
    """
    import torch

    pairs = [_encode_pair(tok, context, TARGET_DELIMITER + ch) for ch in choices]
    out: list[float | None] = [None] * len(pairs)
    if all(len(c) == 1 for _, c in pairs) and len({tuple(x) for x, _ in pairs}) == 1:
        ids = torch.tensor([pairs[0][0]], device=model.device)
        with torch.inference_mode():
            last = model(ids, logits_to_keep=1).logits[0, -1].float().log_softmax(-1)
        return [float(last[c[0]]) for _, c in pairs]
    for i, (ctx, cont) in enumerate(pairs):
        ids = torch.tensor([(ctx + cont)[:-1]], device=model.device)
        with torch.inference_mode():
            logp = model(ids, logits_to_keep=len(cont)).logits[0].float().log_softmax(-1)
        out[i] = float(sum(logp[j, t] for j, t in enumerate(cont)))
    return out


def run_native(model, tok, subjects: dict[str, Subject], shots: int) -> dict[str, list[int]]:
    """Per subject, 1/0 per test question (in file order)."""
    correct = {}
    for name, sub in subjects.items():
        marks = []
        for doc in sub.test:
            ll = _loglikelihoods(model, tok, build_context(sub, doc, shots), list(LETTERS))
            marks.append(int(LETTERS[max(range(4), key=lambda i: ll[i])] == doc["answer"]))
        correct[name] = marks
    return correct


# ---------------------------------------------------------------- lm-eval engine

def _task_name(subject: str) -> str:
    return "soaes_mcq_" + "".join(c if c.isalnum() else "_" for c in subject)


def run_lm_eval(model, tok, subjects: dict[str, Subject], shots: int, batch_size: int = 1) -> dict[str, list[int]]:
    """The harness on the local files: one generated task per subject (csv dataset, cmmlu protocol)."""
    import yaml
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory(prefix="soaes-mcq-") as tmp:
        tmp = Path(tmp)
        names = {}
        for name, sub in subjects.items():
            files = {}
            for split, rows in (("test", sub.test), ("dev", sub.dev)):
                if not rows:
                    continue
                files[split] = str(tmp / f"{_task_name(name)}_{split}.csv")
                with open(files[split], "w", encoding="utf-8", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=["question", *LETTERS, "answer"])
                    w.writeheader()
                    w.writerows(rows)
            task = {
                "task": _task_name(name), "dataset_path": "csv", "dataset_kwargs": {"data_files": files},
                "test_split": "test", "output_type": "multiple_choice", "description": sub.description,
                "doc_to_text": "{{question.strip()}}\nA. {{A}}\nB. {{B}}\nC. {{C}}\nD. {{D}}\n答案：",
                "doc_to_choice": list(LETTERS), "doc_to_target": "{{['A', 'B', 'C', 'D'].index(answer)}}",
                "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
                "metadata": {"version": 1.0},
            }
            if "dev" in files:
                task |= {"fewshot_split": "dev", "fewshot_config": {"sampler": "first_n"}}
            (tmp / f"{_task_name(name)}.yaml").write_text(yaml.safe_dump(task, allow_unicode=True), encoding="utf-8")
            names[_task_name(name)] = name
        lm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size, device=str(model.device))
        res = simple_evaluate(model=lm, tasks=list(names), num_fewshot=shots, log_samples=True,
                              task_manager=TaskManager(include_path=str(tmp), include_defaults=False),
                              verbosity="ERROR")
    correct = {}
    for task, name in names.items():
        samples = sorted(res["samples"][task], key=lambda s: s["doc_id"])
        correct[name] = [int(s["acc"]) for s in samples]
    return correct


# ---------------------------------------------------------------- the command

def evaluate_mcq(model_dir: Path, data: Path, shots_list: tuple[int, ...] = (0, 5), engine: str = "auto",
                 split: str | None = None, batch_size: int = 1) -> dict:
    from .eval_generate import load_model_and_tokenizer

    subjects = load_subjects(data, split)
    if not any(s.test for s in subjects.values()):
        raise UserError(f"no valid questions in {data}")
    for k in shots_list:
        short = [n for n, s in subjects.items() if len(s.dev) < k]
        if short:
            raise UserError(f"{k}-shot needs {k} dev questions per subject; too few in: {', '.join(short)}")
    if engine == "auto":
        try:
            import lm_eval  # noqa: F401
            engine = "lm-eval"
        except ImportError:
            engine = "native"
    model, tok = load_model_and_tokenizer(model_dir)
    run = run_lm_eval if engine == "lm-eval" else run_native
    results = {}
    for k in shots_list:
        correct = run(model, tok, subjects, k) if engine == "native" else run(model, tok, subjects, k, batch_size)
        per = {n: {"accuracy": round(100 * sum(c) / len(c), 4), "n": len(c)} for n, c in correct.items() if c}
        total = sum(len(c) for c in correct.values())
        results[f"{k}-shot"] = {
            "overall": round(100 * sum(sum(c) for c in correct.values()) / total, 4),
            "macro": round(sum(v["accuracy"] for v in per.values()) / len(per), 4),
            "n": total, "subjects": per,
        }
    rejected: dict[str, int] = {}
    for s in subjects.values():
        for r in s.rejected:
            rejected[r["reason"]] = rejected.get(r["reason"], 0) + 1
    return {"model": str(Path(model_dir).resolve()), "data": str(Path(data).resolve()), "engine": engine,
            "results": results, "rejected": rejected,
            "protocol": "lm-eval cmmlu/ceval-valid multiple_choice: description + first-k dev examples + "
                        "'question\\nA. ..\\nD. ..\\n答案：', choices ' A'..' D' by log-likelihood (acc); "
                        "overall = micro average over questions, macro = mean over subjects"}


def retention(model_res: dict, base_res: dict) -> dict[str, float]:
    out = {}
    for k, r in model_res["results"].items():
        b = base_res["results"].get(k, {}).get("overall")
        out[k] = round(100 * r["overall"] / b, 2) if b else math.nan
    return out


def to_markdown(res: dict, base: dict | None = None) -> str:
    shots = list(res["results"])
    subjects = sorted({s for r in res["results"].values() for s in r["subjects"]})
    lines = ["| subject | n | " + " | ".join(shots) + " |", "|---|---:|" + "---:|" * len(shots)]
    for s in subjects:
        n = res["results"][shots[0]]["subjects"][s]["n"]
        lines.append(f"| {s} | {n} | " + " | ".join(f"{res['results'][k]['subjects'][s]['accuracy']:.2f}" for k in shots) + " |")
    lines.append(f"| **overall (micro)** | {res['results'][shots[0]]['n']} | "
                 + " | ".join(f"**{res['results'][k]['overall']:.2f}**" for k in shots) + " |")
    lines.append("| macro (mean of subjects) | | " + " | ".join(f"{res['results'][k]['macro']:.2f}" for k in shots) + " |")
    if base is not None:
        lines.append("| baseline overall | | " + " | ".join(f"{base['results'][k]['overall']:.2f}" for k in shots) + " |")
        ret = retention(res, base)
        lines.append("| retention (% of baseline) | | " + " | ".join(f"{ret[k]:.2f}" for k in shots) + " |")
    lines += ["", f"engine: {res['engine']}; rejected rows: {json.dumps(res['rejected'])}", f"protocol: {res['protocol']}"]
    return "\n".join(lines) + "\n"
