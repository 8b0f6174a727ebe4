"""Async client for OpenAI-compatible chat endpoints (Zhipu GLM-4, vLLM, OpenAI).

* bounded concurrency (a semaphore) and optional request-per-minute / token-per-minute limits
  (requests are spaced, not burst, so a provider's sliding window is never exceeded);
* retries with exponential backoff and jitter on 429 (honouring ``Retry-After``), 5xx, timeouts,
  connection errors and unparseable response bodies; none on other 4xx (they will not get better);
* every successful response is committed to the request cache before it is used, and a cached
  request is never sent again; identical requests in flight at once are sent once and shared;
* usage counters (requests, retries, cache hits, tokens, failures by reason) for the manifest.

The API key is passed to the ``openai`` client and nowhere else: it is not logged, not cached,
not part of any error message.
"""
from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from corpora_manifests.errors import UserError

from .config import LLMConfig
from .request_cache import RequestCache, request_key

log = logging.getLogger(__name__)

KEY_ENV_DEFAULTS = ("ZHIPUAI_API_KEY", "OPENAI_API_KEY")


def resolve_api_key(cfg: LLMConfig) -> tuple[str, str]:
    """(name of the variable, key) from the environment; a missing key is a UserError."""
    names = (cfg.api_key_env,) if cfg.api_key_env else KEY_ENV_DEFAULTS
    for n in names:
        v = os.environ.get(n)
        if v:
            return n, v
    raise UserError(
        f"no API key: set {' or '.join(names)} in the environment (for a local vLLM server any value, e.g. EMPTY)"
    )


def check_endpoint(cfg: LLMConfig, api_key: str) -> None:
    """Fail fast, before any work, if the endpoint cannot be reached or refuses the key."""
    import httpx

    url = cfg.base_url.rstrip("/") + "/models"
    try:
        r = httpx.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=cfg.preflight_timeout_s)
    except httpx.HTTPError as e:
        raise UserError(f"LLM endpoint {cfg.base_url} is unreachable ({type(e).__name__})") from None
    if r.status_code in (401, 403):
        raise UserError(f"LLM endpoint {cfg.base_url} rejected the API key (HTTP {r.status_code})")


@dataclass
class LLMResult:
    content: str
    finish_reason: str | None
    usage: dict[str, int]
    cached: bool
    attempts: int
    key: str
    shared: bool = False  # answered by an identical request that was already in flight


class _LeaderCancelled(Exception):
    """The caller that was sending a shared request was cancelled before it finished."""


class LLMError(Exception):
    def __init__(self, reason: str, detail: str = "", attempts: int = 0):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.attempts = attempts


@dataclass
class Usage:
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    cache_hits: int = 0
    shared: int = 0  # identical in-flight requests merged into one paid request
    completed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retry_reasons: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "retries": self.retries, "cache_hits": self.cache_hits,
            "shared": self.shared, "completed": self.completed, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "retry_reasons": dict(self.retry_reasons), "failures": dict(self.failures),
        }


class RateLimiter:
    """Spaces requests so neither requests/min nor tokens/min is exceeded (no bursts)."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self._next_req = 0.0
        self._next_tok = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next_req if self.rpm else now, self._next_tok if self.tpm else now)
            if self.rpm:
                self._next_req = start + 60.0 / self.rpm
            if self.tpm:
                self._next_tok = start + tokens * 60.0 / self.tpm
        delay = start - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _retry_after(exc: Exception) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    v = headers.get("retry-after")
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        try:
            dt = email.utils.parsedate_to_datetime(v)
            return max(0.0, dt.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class LLMClient:
    def __init__(self, cfg: LLMConfig, api_key: str, cache: RequestCache):
        from openai import AsyncOpenAI

        self.cfg = cfg
        self.cache = cache
        # The openai client's own retries are off: ours honour Retry-After, count, and back off.
        self._client = AsyncOpenAI(base_url=cfg.base_url, api_key=api_key, timeout=cfg.timeout_s, max_retries=0)
        self._sem = asyncio.Semaphore(cfg.max_concurrency)
        self._limiter = RateLimiter(cfg.requests_per_minute, cfg.tokens_per_minute)
        self.usage = Usage()
        self._inflight: dict[str, asyncio.Future] = {}  # cache key -> result of the request being sent

    def params(self) -> dict[str, Any]:
        return {"temperature": self.cfg.temperature, "top_p": self.cfg.top_p, "max_tokens": self.cfg.max_tokens}

    def key_for(self, messages: list[dict[str, str]]) -> str:
        return request_key(self.cfg.model, messages, self.params())

    async def complete(self, messages: list[dict[str, str]]) -> LLMResult:
        """One chat completion; never pays for a request twice.

        A cached request is answered from the cache. Identical requests in flight at the same time
        (two versions of a law sharing a chapter word for word give the same prompt) are sent once:
        the first caller sends it, the others wait for its result (single-flight on the cache key).
        The cache is checked again after a concurrency slot is taken, because a request queued
        behind the semaphore may have been answered meanwhile.
        """
        key = self.key_for(messages)
        while True:
            hit = self.cache.get(key)
            if hit is not None:
                self.usage.cache_hits += 1
                return LLMResult(hit["content"], hit["finish_reason"], hit["usage"], True, hit["attempts"], key)
            leader = self._inflight.get(key)
            if leader is None:
                break
            try:
                res = await asyncio.shield(leader)
            except _LeaderCancelled:
                continue  # the sender was cancelled: try again (cache first), possibly as the sender
            except LLMError:
                self.usage.shared += 1  # the shared request failed: this caller gets the same failure
                raise
            self.usage.shared += 1
            return LLMResult(res.content, res.finish_reason, res.usage, False, res.attempts, key, shared=True)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            res = await self._send(key, messages)
        except LLMError as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        except BaseException:
            fut.set_exception(_LeaderCancelled())
            fut.exception()
            raise
        else:
            fut.set_result(res)
            return res
        finally:
            del self._inflight[key]

    async def _send(self, key: str, messages: list[dict[str, str]]) -> LLMResult:
        import openai

        est_tokens = sum(len(m["content"]) for m in messages) + self.cfg.max_tokens
        attempt = 0
        async with self._sem:
            hit = self.cache.get(key)  # answered while this request waited for a slot
            if hit is not None:
                self.usage.cache_hits += 1
                return LLMResult(hit["content"], hit["finish_reason"], hit["usage"], True, hit["attempts"], key)
            while True:
                attempt += 1
                await self._limiter.acquire(est_tokens)
                self.usage.requests += 1
                wait: float | None = None
                try:
                    # The openai client's transport, auth and error mapping, without its typed
                    # request/response transforms (~2/3 of its CPU per request, measured): the body
                    # is plain JSON and we read three fields of the reply.
                    data = await self._client.post(
                        "/chat/completions", cast_to=object,
                        body={"model": self.cfg.model, "messages": messages, **self.params()},
                    )
                    choice = data["choices"][0]
                    content = choice["message"].get("content") or ""
                    if not isinstance(content, str):
                        raise TypeError("message content is not a string")
                    finish_reason = choice.get("finish_reason")
                    u = data.get("usage") or {}
                    usage = {"prompt_tokens": int(u.get("prompt_tokens") or 0),
                             "completion_tokens": int(u.get("completion_tokens") or 0)}
                    # Commit before use: from here on this request is never paid for again.
                    self.cache.put(key, self.cfg.model, content, finish_reason, usage, attempt)
                    self.usage.completed += 1
                    self.usage.prompt_tokens += usage["prompt_tokens"]
                    self.usage.completion_tokens += usage["completion_tokens"]
                    return LLMResult(content, finish_reason, usage, False, attempt, key)
                except openai.RateLimitError as e:
                    reason, wait = "rate_limited", _retry_after(e)
                except openai.InternalServerError as e:
                    reason, wait = f"http_{e.status_code}", _retry_after(e)
                except openai.APITimeoutError:
                    reason = "timeout"
                except openai.APIConnectionError:
                    reason = "connection_error"
                except openai.APIResponseValidationError:
                    reason = "malformed_response"
                except openai.APIStatusError as e:
                    # other 4xx: the request itself is wrong; retrying would only pay again
                    self.usage.failures[f"http_{e.status_code}"] += 1
                    raise LLMError(f"http_{e.status_code}", _short(e), attempt) from None
                except (ValueError, KeyError, IndexError, AttributeError, TypeError) as e:
                    # a 200 whose body is not a chat completion (broken JSON, missing choices)
                    reason, wait = "malformed_response", None
                    log.debug("malformed response: %s", type(e).__name__)
                if attempt > self.cfg.max_retries:
                    self.usage.failures[reason] += 1
                    raise LLMError(reason, f"gave up after {attempt} attempts", attempt)
                self.usage.retries += 1
                self.usage.retry_reasons[reason] += 1
                if wait is None:
                    wait = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** (attempt - 1))
                    wait *= random.uniform(0.5, 1.0)  # jitter: restarted clients do not retry in lockstep
                else:
                    wait = min(wait, self.cfg.backoff_max_s)
                log.info("retrying after %s (attempt %d, waiting %.2fs)", reason, attempt, wait)
                await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self._client.close()


def _short(e: Exception) -> str:
    msg = getattr(e, "message", None) or str(e)
    return msg[:200]
