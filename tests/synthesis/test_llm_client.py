"""The LLM client against a real local HTTP server speaking the OpenAI API (no mocks)."""
import asyncio
import time

import pytest

from synthesis.config import LLMConfig
from synthesis.llm_client import LLMClient, LLMError, RateLimiter
from synthesis.request_cache import RequestCache
from synthesis.testserver import item_key


def _msgs(tag: str) -> list[dict]:
    return [{"role": "user", "content": f"{tag} 文档标题：企业国有资产法\n<文档>第二条 本法所称企业国有资产，是指国家对企业各种形式的出资所形成的权益。</文档>"}]


def _client(server, tmp_path, **kw) -> LLMClient:
    cfg = LLMConfig(base_url=server.base_url, timeout_s=kw.pop("timeout_s", 1.0), backoff_base_s=0.01,
                    backoff_max_s=0.5, max_retries=kw.pop("max_retries", 3), **kw)
    return LLMClient(cfg, "sk-test", RequestCache(tmp_path / "cache.sqlite"))


async def _run(client, *tags):
    out = []
    for t in tags:
        try:
            out.append(await client.complete(_msgs(t)))
        except LLMError as e:
            out.append(e)
    await client.aclose()
    return out


def test_retries_on_429_500_timeout_malformed_but_not_400(fake_server, tmp_path):
    s = fake_server(retry_after_s=0.3, hang_s=3.0, script={
        "R429": ["429", "ok"], "R500": ["500", "500", "ok"], "HANG": ["hang", "ok"],
        "BAD": ["malformed", "ok"], "B400": ["bad_request", "ok"], "DEAD": ["500"] * 10})
    c = _client(s, tmp_path, timeout_s=0.5, max_retries=2)
    t = time.monotonic()
    res = asyncio.run(_run(c, "R429", "R500", "HANG", "BAD", "B400", "DEAD"))
    took = time.monotonic() - t
    r429, r500, hang, bad, b400, dead = res
    assert r429.attempts == 2 and r500.attempts == 3 and hang.attempts == 2 and bad.attempts == 2
    assert isinstance(b400, LLMError) and b400.reason == "http_400"
    assert isinstance(dead, LLMError) and dead.reason == "http_500" and dead.attempts == 3
    assert s.received[item_key(_msgs("B400")[0]["content"])] == 1  # other 4xx: never retried
    u = c.usage.as_dict()
    assert u["retry_reasons"] == {"rate_limited": 1, "http_500": 4, "timeout": 1, "malformed_response": 1}
    assert u["failures"] == {"http_400": 1, "http_500": 1}
    assert took >= 0.3 + 0.5  # waited Retry-After and the client timeout
    assert took < 8


def test_cache_means_a_finished_request_is_never_sent_again(fake_server, tmp_path):
    s = fake_server()
    first = asyncio.run(_run(_client(s, tmp_path), "A", "B"))
    assert not any(r.cached for r in first)
    c2 = _client(s, tmp_path)  # a "restarted" run: new client, same cache file
    second = asyncio.run(_run(c2, "A", "B", "C"))
    assert [r.cached for r in second] == [True, True, False]
    assert second[0].content == first[0].content
    assert all(n == 1 for n in s.received.values()) and len(s.received) == 3
    assert c2.usage.cache_hits == 2 and c2.usage.requests == 1
    # different sampling parameters are a different request
    c3 = _client(s, tmp_path, temperature=0.1)
    asyncio.run(_run(c3, "A"))
    assert c3.usage.requests == 1


def test_concurrency_is_bounded(fake_server, tmp_path):
    s = fake_server(latency_s=0.1)
    c = _client(s, tmp_path, max_concurrency=4)

    async def go():
        await asyncio.gather(*(c.complete(_msgs(f"item{i}")) for i in range(16)))
        await c.aclose()

    t = time.monotonic()
    asyncio.run(go())
    assert s.max_in_flight == 4
    assert time.monotonic() - t >= 0.4  # 16 requests / 4 slots * 0.1 s


def test_rate_limiter_spaces_requests():
    async def go():
        rl = RateLimiter(requests_per_minute=600, tokens_per_minute=None)  # one per 0.1 s
        t = time.monotonic()
        for _ in range(4):
            await rl.acquire(10)
        return time.monotonic() - t

    assert asyncio.run(go()) >= 0.29

    async def tokens():
        rl = RateLimiter(None, tokens_per_minute=60_000)  # 1000 tokens/s
        t = time.monotonic()
        await rl.acquire(200)
        await rl.acquire(200)
        await rl.acquire(1)
        return time.monotonic() - t

    assert asyncio.run(tokens()) >= 0.39


def test_truncated_output_is_cached_not_resent(fake_server, tmp_path):
    s = fake_server(script={"T": ["truncated"]})
    (r,) = asyncio.run(_run(_client(s, tmp_path), "T"))
    assert r.finish_reason == "length" and r.content.startswith("```json")
    (again,) = asyncio.run(_run(_client(s, tmp_path), "T"))
    assert again.cached and sum(s.received.values()) == 1


def test_identical_requests_in_flight_are_sent_once(fake_server, tmp_path):
    s = fake_server(latency_s=0.2, script={"FAIL": ["bad_request"]})
    c = _client(s, tmp_path, max_concurrency=2)

    async def go():
        same = [c.complete(_msgs("SAME")) for _ in range(5)]
        other = [c.complete(_msgs(f"O{i}")) for i in range(3)]
        failing = [c.complete(_msgs("FAIL")) for _ in range(2)]
        res = await asyncio.gather(*same, *other, *failing, return_exceptions=True)
        await c.aclose()
        return res

    res = asyncio.run(go())
    same, failing = res[:5], res[8:]
    assert len({r.content for r in same}) == 1 and sum(r.shared for r in same) == 4
    assert all(isinstance(e, LLMError) and e.reason == "http_400" for e in failing)  # a shared failure
    assert s.received[item_key(_msgs("SAME")[0]["content"])] == 1
    assert s.received[item_key(_msgs("FAIL")[0]["content"])] == 1
    assert sum(s.received_requests.values()) == len(s.received_requests) == 5  # SAME, O0-O2, FAIL
    assert c.usage.requests == 5 and c.usage.shared == 5


def test_two_versions_of_a_law_pay_each_distinct_prompt_once(fake_server, tmp_path, in_repo, monkeypatch):
    """海洋观测预报管理条例 2012 and 2023 share most chapters word for word: each distinct prompt is paid once."""
    from corpora_manifests.models import load_manifest
    from synthesis.pipeline import run_synthesis

    from .conftest import DEMO_CONFIG, SYNTH_FIXTURES

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    s = fake_server(latency_s=0.05)
    out = tmp_path / "run"
    run_synthesis(str(DEMO_CONFIG), [
        f"output_dir={out}", "generator=llm", f"llm.base_url={s.base_url}", "llm.max_concurrency=8",
        f"source.path={SYNTH_FIXTURES / 'ocean_regulation_versions.jsonl'}", "review.required=true",
        "prompts.report_fraction=0.2"], progress=False)
    usage = load_manifest(out / "sft_stage2").producer.usage
    paid = sum(s.received_requests.values())
    distinct = len(s.received_requests)
    jobs = usage["completed"] + usage["shared"] + usage["cache_hits"]
    assert paid == distinct == usage["requests"] == usage["completed"]
    assert usage["shared"] >= 1 and jobs > distinct  # the versions did share prompts, and they were merged
