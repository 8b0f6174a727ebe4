"""Stage 2 with the LLM generator end to end, against a local OpenAI-compatible HTTP server."""
import json
import logging
import os
import subprocess
import sys

import pytest

from corpora_manifests.errors import UserError
from corpora_manifests.models import load_manifest
from corpora_manifests.rejects import read_rejects
from synthesis.pipeline import run_synthesis
from synthesis.store import ReviewStore

from .conftest import DEMO_CONFIG, REPO

SECRET = "sk-UNIQUE-test-key-7f3a9c"


def _overrides(out, server, *extra):
    return [f"output_dir={out}", "generator=llm", f"llm.base_url={server.base_url}", "source.limit=6",
            "llm.backoff_base_s=0.01", "llm.timeout_s=2", "llm.max_retries=2", "llm.max_concurrency=8",
            "review.required=true", "prompts.report_fraction=0.2", *extra]


def test_llm_run_restart_never_resends_and_key_never_leaks(fake_server, tmp_path, in_repo, monkeypatch, caplog):
    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    # 第三条 appears in several chunks: its first request hits 429 then 500 (retried); 第五条's
    # first two are truncated / malformed; 第七条 gets a 400 that is not retried.
    s = fake_server(script={"第三条": ["429", "500"], "第五条": ["truncated", "malformed"], "第七条": ["bad_request"]})
    out = tmp_path / "run"
    run_synthesis(str(DEMO_CONFIG), _overrides(out, s), progress=False)
    first = dict(s.received)
    assert SECRET in " ".join(s.seen_auth)  # the key did reach the server ...
    m = load_manifest(out / "sft_stage2")
    usage = m.producer.usage
    assert usage["retries"] >= 2 and usage["failures"].get("http_400") == 1
    assert usage["completed"] + usage["failures"]["http_400"] == len(first)
    stats = m.stats["synthesis"]
    assert stats["generation_failures"] == 1 and stats["review"]["pending"] == stats["valid_items"] > 0
    assert m.totals.records == 0  # nothing approved yet: nothing flows on
    reasons = {r["reason"] for r in read_rejects(out / "rejects")}
    assert "llm_http_400" in reasons
    with ReviewStore(out / "review.sqlite") as st:
        salvaged = [i for i in st.list_items() if i.item.metadata.get("synth.salvaged")]
    assert salvaged or "truncated_output" in reasons  # a cut-off reply is salvaged or rejected, never lost
    with ReviewStore(out / "review.sqlite") as st:
        items = st.list_items()
    assert {i.item.origin for i in items} == {"synthetic"}
    assert {i.item.task_type for i in items} == {"qa", "report"}
    md = items[0].item.metadata
    assert len(md["synth.template_sha256"]) == 64 and 0 <= md["quality.grounding"] <= 1
    assert md["synth.model"] == "glm-4"

    # Restart (the 400 was a failure, so the run is not finished): finished requests are served
    # from the cache, only the failed one is sent again.
    run_synthesis(str(DEMO_CONFIG), _overrides(out, s), progress=False)
    resent = {k: n - first.get(k, 0) for k, n in s.received.items() if n - first.get(k, 0)}
    assert len(resent) == 1 and list(resent.values()) == [1]
    m2 = load_manifest(out / "sft_stage2")
    assert m2.producer.usage["cache_hits"] == len(first) - 1 and m2.stats["synthesis"]["generation_failures"] == 0

    # ... and never reaches logs, the cache, the store, rejects, stats or manifests.
    assert SECRET not in caplog.text
    for p in out.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p


def test_approved_items_flow_on_with_edits(fake_server, tmp_path, in_repo, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    s = fake_server()
    out = tmp_path / "run"
    run_synthesis(str(DEMO_CONFIG), _overrides(out, s, "source.limit=3"), progress=False)
    with ReviewStore(out / "review.sqlite") as st:
        pending = st.list_pending()
        a, b, c = pending[:3]
        st.record_decision(a.item.item_id, "accept", "alice")
        st.record_decision(b.item.item_id, "accept", "alice", edited_answer="修改后的答案。")
        st.record_decision(c.item.item_id, "reject", "alice")
    run_synthesis(str(DEMO_CONFIG), _overrides(out, s, "source.limit=3"), progress=False)
    from corpora_manifests.shards import iter_rows

    rows = []
    for stage in ("sft_stage2", "eval"):
        rows += list(iter_rows(out / stage))
    got = {r["id"]: r for r in rows}
    assert set(got) == {a.item.item_id, b.item.item_id}
    assert got[b.item.item_id]["messages"][-1]["content"] == "修改后的答案。"
    assert got[b.item.item_id]["metadata"]["review.edited"] is True
    assert got[a.item.item_id]["messages"][0] == {"role": "user", "content": a.item.question}


def _soaes(*args, env=None):
    return subprocess.run([sys.executable, "-c", "from soaes.cli import main; main()", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=120)


def test_missing_key_and_unreachable_endpoint_are_user_errors(tmp_path, monkeypatch):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ZHIPUAI_API_KEY")}
    args = ["synth", "run", str(DEMO_CONFIG), "-o", str(tmp_path / "x"), "--set", "generator=llm",
            "--set", f"llm.base_url=http://127.0.0.1:{port}/v1", "--set", "llm.preflight_timeout_s=2"]
    r = _soaes(*args, env=env)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "no API key" in r.stderr and "OPENAI_API_KEY" in r.stderr
    r = _soaes(*args, env={**env, "OPENAI_API_KEY": SECRET})
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "unreachable" in r.stderr and SECRET not in r.stderr + r.stdout
    assert not (tmp_path / "x").exists()  # checked before any work


def test_rejected_key_is_a_user_error():
    """A server that answers 401 to the preflight: the run stops with one clear line."""
    import asyncio
    import threading

    from aiohttp import web

    from synthesis.config import LLMConfig
    from synthesis.llm_client import check_endpoint

    async def deny(request):
        return web.json_response({"error": "bad key"}, status=401)

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/v1/models", deny)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    threading.Thread(target=loop.run_forever, daemon=True).start()
    try:
        with pytest.raises(UserError, match="rejected the API key") as e:
            check_endpoint(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", preflight_timeout_s=2), SECRET)
        assert SECRET not in str(e.value)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
