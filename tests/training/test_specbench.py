import json
import subprocess
import sys
from pathlib import Path

from tests.training.eval_models import save_noisy_copy, save_tiny

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "training" / "sft_stage2"


def test_specbench_three_methods_two_modes_self_check_and_identical_greedy_outputs(tmp_path):
    target = save_tiny(tmp_path / "target", seed=0)
    draft = save_noisy_copy(target, tmp_path / "draft", sigma=0.05)
    out = tmp_path / "bench"
    r = subprocess.run([sys.executable, "-m", "soaes.cli", "eval", "specbench", "--target", target, "--draft", draft,
                        "--data", DATA, "--split", "validation", "--n", "3,5", "--limit", "1",
                        "--max-new-tokens", "10", "-o", out], capture_output=True, text=True,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((out / "specbench.json").read_text(encoding="utf-8"))
    rows = {(x["mode"], x["method"], x["n"]): x for x in res["rows"]}
    for mode in ("greedy", "top-p 0.7"):
        assert (mode, "target", None) in rows
        for n in (3, 5):
            for method in ("draft", "prompt-lookup") + (("self-draft",) if mode == "greedy" else ()):
                row = rows[(mode, method, n)]
                # Every verification round commits its accepted drafts plus one token of the target,
                # except a last round cut by the length budget (no bonus token): at most one per prompt.
                assert 0 <= row["accepted"] + row["rounds"] - row["new_tokens"] <= row["prompts"]
                assert row["accepted"] <= row["drafted"] and row["tokens_per_s"] > 0 and row["speedup"] > 0
                if method != "prompt-lookup":
                    assert row["drafted"] <= n * row["rounds"]
                if mode == "greedy":
                    assert row["outputs_equal_target"] == 1  # token for token
        assert rows[("greedy", "self-draft", 3)]["acceptance_rate"] == rows[("greedy", "self-draft", 5)]["acceptance_rate"] == 1.0
    # A draft whose next tokens differ from the target's (checked teacher-forced when the test was written)
    # is measured as such; with the invariant above, its rounds then equal its new tokens.
    assert rows[("greedy", "draft", 3)]["acceptance_rate"] < 0.5
    assert res["trustworthy"] and len(res["checks"]) == 8 and all(c["ok"] for c in res["checks"])
    md = (out / "specbench.md").read_text(encoding="utf-8")
    assert "prompt-lookup" in md and "self-draft" in md and "acceptance rate = accepted draft tokens / drafted tokens" in md
    assert md in r.stdout


def test_a_drafted_stop_token_the_target_agrees_with_is_accepted(tmp_path):
    """An answer that ends: the self-draft drafts the stop token and the target agrees. transformers'
    own num_matches books that token as the target's bonus token (acceptance < 100 % for a perfect
    draft); the benchmark counts it accepted, so the self-check holds on models that stop."""
    import torch

    from training.eval_generate import load_model_and_tokenizer
    from training.specbench import run_method

    target, tok = load_model_and_tokenizer(save_tiny(tmp_path / "target", seed=0))
    ids = tok("国有资产监督管理委员会的职责", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        free = target.generate(ids, max_new_tokens=40, do_sample=False, top_p=None, top_k=None, temperature=None,
                               eos_token_id=[], pad_token_id=0)[0, ids.shape[1]:].tolist()
    # n = 3: rounds commit output positions 0-3, 4-7, ...; a stop at p % 4 != 3 is a drafted token
    p = next(i for i in range(4, 40) if i % 4 != 3 and free[i] not in free[:i])
    common = dict(max_new_tokens=40, stops=[free[p]], pad_id=0)
    base = run_method(target, None, [ids], method="target", n=None, mode="greedy", top_p=None, **common)
    assert base.outputs[0] == free[: p + 1]  # the answer ends at the chosen stop token
    r = run_method(target, target, [ids], method="self-draft", n=3, mode="greedy", top_p=None, **common)
    assert r.outputs == base.outputs
    assert r.counts.accepted == r.counts.drafted > 0  # a perfect draft: 100 %, the stop token included
    # each round commits its drafts + the target's bonus token, except the last, cut at the stop token
    assert r.counts.accepted + r.counts.rounds - 1 == p + 1


def test_a_draft_with_fewer_padded_vocabulary_rows_than_the_target_is_benchmarked(tmp_path):
    # the paper's pair: Qwen2.5-72B has 152,064 embedding rows, the 7B 151,936; same tokenizer
    from training.specbench import SpecbenchSettings, specbench

    target = save_tiny(tmp_path / "target", seed=0, vocab_size=152064)
    draft = save_tiny(tmp_path / "draft", seed=0, vocab_size=151936)
    res = specbench(target, draft, DATA, SpecbenchSettings(ns=(3,), modes=("top-p",), max_new_tokens=6, limit=1),
                    split="validation")
    rows = {(x["mode"], x["method"]): x for x in res["rows"]}
    assert rows[("top-p 0.7", "draft")]["drafted"] > 0 and rows[("top-p 0.7", "draft")]["new_tokens"] > 0
    # a draft with another tokenizer is refused with one line
    import pytest
    from transformers import AutoTokenizer

    from corpora_manifests.errors import UserError

    other = save_tiny(tmp_path / "other", seed=0)
    tk = AutoTokenizer.from_pretrained(other)
    tk.add_tokens(["<extra_id_x>"])
    tk.save_pretrained(other)
    with pytest.raises(UserError, match="share the tokenizer"):
        specbench(target, other, DATA, SpecbenchSettings(ns=(3,), modes=("greedy",), max_new_tokens=4, limit=1),
                  split="validation")
