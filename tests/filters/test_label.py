"""`soaes filters label` end to end against the local OpenAI-compatible server, with faults; then
`train-domain` on the labels and an uncertainty-sampled second batch."""
import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from filters.cli import app
from filters.label import LABELS, choose, parse_label
from synthesis.testserver import FakeChatServer

runner = CliRunner()


def _lines(p):
    return [json.loads(l) for l in p.open(encoding="utf-8")] if p.exists() else []


@pytest.fixture
def pool(fixtures_dir, tmp_path):
    d = tmp_path / "pool"
    d.mkdir()
    for name in ("disc_fin_sft_samples", "medical_sft_1k_ood", "belle_eval_set", "belle_seed_tasks"):
        shutil.copy(fixtures_dir / "instructions" / f"{name}.jsonl", d / f"{name}.jsonl")
    return d


def _config(tmp_path, server, **over):
    cfg = {"output": str(tmp_path / "labels"), "sample": 12,
           "llm": {"base_url": server.base_url, "model": "glm-4", "api_key_env": "SOAES_LABEL_TEST_KEY",
                   "timeout_s": 0.5, "max_retries": 4, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                   "temperature": 0.0, "max_concurrency": 4}}
    cfg.update(over)
    p = tmp_path / "label.yaml"
    p.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return p


def test_parse_label_accepts_json_in_prose_and_rejects_unknown_labels():
    assert parse_label('好的：{"label": "Law", "rationale": "合同纠纷"}') == ("law", "合同纠纷")
    for bad in ("这条属于金融", '{"label": "sports"}', '{"label": "law"'):
        with pytest.raises(ValueError):
            parse_label(bad)


def test_choose_stratifies_and_ranks_by_uncertainty():
    items = [{"id": f"{s}{i}", "source": s, "p_in": i / 20} for s in "ab" for i in range(20)]
    strat = choose(items, 10, "stratified", 0.5, [0.1, 0.3, 0.5, 0.7, 0.9])
    assert {r["source"] for r in strat} == {"a", "b"}
    # every band, the top one included (10 picks < 6 bands x 2 sources: bands come first)
    assert len({sum(r["p_in"] >= b for b in (0.1, 0.3, 0.5, 0.7, 0.9)) for r in strat}) == 6
    unc = choose(items, 4, "uncertainty", 0.5, [])
    ps = sorted(r["p_in"] for r in unc)
    assert ps.count(0.5) == 2 and all(abs(p - 0.5) <= 0.05 + 1e-9 for p in ps)


def test_label_then_train_then_uncertainty_batch(pool, tmp_path, monkeypatch):
    monkeypatch.setenv("SOAES_LABEL_TEST_KEY", "sk-test-secret")
    faults = ["429", "500", "malformed", "hang", "bad_label"]  # the first requests misbehave, in this order
    with FakeChatServer(hang_s=1.0, retry_after_s=0.01, script={"<待分类>": faults}) as server:
        cfg = _config(tmp_path, server)
        r = runner.invoke(app, ["label", str(pool), str(cfg)])
        assert r.exit_code == 0, r.output
        res = json.loads(r.output)
        out = tmp_path / "labels"
        labels, rejects = _lines(out / "labels.jsonl"), _lines(out / "rejects.jsonl")
        # 12 chosen: every one labelled or rejected with its reason (the "bad_label" answer), none lost
        assert res["chosen"] == 12 and len(labels) + len(rejects) == 12
        assert [x["reason"].split(":")[0] for x in rejects] == ["bad_label"]
        assert res["usage"]["retries"] >= 4 and set(res["usage"]["retry_reasons"]) >= {"rate_limited", "http_500",
                                                                                       "malformed_response", "timeout"}
        assert all(x["label"] in LABELS and x["rationale"] and x["prompt_version"] == "domain_label_v1" for x in labels)
        assert len({x["source"] for x in labels}) >= 3  # stratified over sources
        # the keyword-rule server answered with in-domain labels and with other: both reached labels.jsonl
        got = {x["label"] for x in labels}
        assert "other" in got and got - {"other"}, got
        assert "sk-test-secret" not in r.output
        paid = dict(server.counts()["answered"])

        # a second run: a new batch, no record labelled twice, no answered request paid again
        r2 = runner.invoke(app, ["label", str(pool), str(cfg), "--sample", "6"])
        assert r2.exit_code == 0, r2.output
        labels2 = _lines(out / "labels.jsonl")
        ids = [x["id"] for x in labels2]
        assert len(ids) == len(set(ids)) and len(labels2) > len(labels)
        answered = server.counts()["answered"]
        # (a hung request may have been answered after the client gave up, so compare with run 1's counts)
        assert all(answered[k] == paid[k] for k in paid), "a cached labelling request was sent again"

        # train-domain learns the labels (extra keys are ignored) and calibrates a threshold
        model = tmp_path / "pool_domain.bin"
        r3 = runner.invoke(app, ["train-domain", "--train", str(out / "labels.jsonl"), "--output", str(model),
                                 "--epoch", "5", "--dim", "8", "--bucket", "20000"])
        assert r3.exit_code == 0, r3.output
        thr = json.loads(r3.output)["threshold"]

        # the next batch: the unlabelled records closest to the new model's threshold
        r4 = runner.invoke(app, ["label", str(pool), str(cfg), "--sample", "5", "--strategy", "uncertainty",
                                 "--set", f"model={model}"])
        assert r4.exit_code == 0, r4.output
        new = _lines(out / "labels.jsonl")[len(labels2):]
        assert len(new) == 5 and all(x["strategy"] == "uncertainty" for x in new)
        assert not {x["id"] for x in new} & set(ids)
        from filters.domain.model import DomainModel
        from filters.label import read_pool

        items, _ = read_pool([pool])
        rest = [it for it in items if it["id"] not in set(ids) | {x["id"] for x in new}
                and it["id"] not in {x["id"] for x in rejects}]
        m = DomainModel(model)
        gap_rest = min(abs(p.p_in - thr) for p in m.predict([it["text"] for it in rest]))
        assert max(abs(x["p_in"] - thr) for x in new) <= gap_rest + 1e-4


def test_label_missing_key_is_a_user_error(pool, tmp_path, monkeypatch):
    monkeypatch.delenv("SOAES_LABEL_TEST_KEY", raising=False)
    with FakeChatServer() as server:
        r = runner.invoke(app, ["label", str(pool), str(_config(tmp_path, server))])
    assert r.exit_code != 0 and "SOAES_LABEL_TEST_KEY" in str(r.exception or r.output)
