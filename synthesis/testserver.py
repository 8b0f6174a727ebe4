"""A local OpenAI-compatible chat server with scripted faults, for tests and the benchmark.

It is a real HTTP server (aiohttp, 127.0.0.1, a free port) that the real ``openai`` client talks
to. For each request it picks a behaviour:

* ``ok``         — 200 with Q&A pairs drawn from the ``<文档>`` block of the prompt (so they pass
                   the grounding check), after ``latency_s``;
* ``429``        — 429 with ``Retry-After: <retry_after_s>``;
* ``500``        — 500 with an error body;
* ``hang``       — sleeps ``hang_s`` (longer than the client timeout), then answers;
* ``malformed``  — 200 whose body is not JSON;
* ``truncated``  — 200, ``finish_reason: length``, content a JSON array cut mid-object;
* ``bad_request``— 400 (must not be retried);
* ``bad_label``  — 200 whose content is not a valid label (for domain-labelling prompts).

Domain-labelling prompts (``filters/label.py``: the text inside ``<待分类>…</待分类>``) are answered
deterministically with ``{"label", "rationale"}`` from a keyword rule (``_label_for``).

A *script* maps a substring of the user message to a list of behaviours consumed one per request
(then ``default``). Requests are counted per item — the sha256 of the user message, which is what
``item_key`` computes — as ``received`` and ``answered`` (a 200 fully written), so a test can
assert that an item was requested exactly once, and per request-cache key
(``received_requests``: the key the client's cache uses), so a test can match the server's view with
what a client has cached. Loopback only; every sleep is bounded.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections import Counter
from typing import Any

_DOC_RE = re.compile(r"<文档>\s*(.*?)\s*</文档>", re.S)
_TITLE_RE = re.compile(r"文档标题：(.*)")
_SENT_RE = re.compile(r"[^。；！？\n]+[。；！？]")


def item_key(user_content: str) -> str:
    return hashlib.sha256(user_content.encode("utf-8")).hexdigest()[:16]


def _answer_for(user: str, n_pairs: int = 3) -> list[dict[str, str]]:
    m = _DOC_RE.search(user)
    text = m.group(1) if m else user
    t = _TITLE_RE.search(user)
    title = (t.group(1).strip() if t else "该文件")[:40]
    sents = [s.strip() for s in _SENT_RE.findall(text) if len(s.strip()) >= 12] or [text[:200]]
    if "报告撰写" in user:
        return [{"question": f"请撰写一份关于《{title}》主要规定的解读报告，供企业管理人员学习使用。",
                 "answer": f"《{title}》解读报告\n\n" + "\n".join(f"{i + 1}. {s}" for i, s in enumerate(sents[:12]))}]
    out = []
    for s in sents[:n_pairs]:
        head = re.sub(r"^第[^条]{1,8}条\s*", "", s)[:14]
        out.append({"question": f"根据《{title}》，关于“{head}”有什么规定？", "answer": s})
    return out


_LABEL_RE = re.compile(r"<待分类>\s*(.*?)\s*</待分类>", re.S)
_LABEL_RULES = (("law", ("法律", "法院", "合同", "诉讼", "犯罪", "律师", "法规")),
                ("finance", ("银行", "股票", "金融", "投资", "利率", "税", "会计", "保险", "基金", "债券", "理财", "经济",
                             "贸易", "财务", "资产", "利润")),
                ("business", ("企业", "营销", "公司", "商业", "品牌")),
                ("politics", ("政府", "政策", "政治", "国务院", "外交")))


def _label_for(text: str) -> dict[str, str]:
    for label, words in _LABEL_RULES:
        hit = next((w for w in words if w in text), None)
        if hit:
            return {"label": label, "rationale": f"指令讨论“{hit}”相关内容"}
    return {"label": "other", "rationale": "不涉及金融、法律、商业或政治"}


class FakeChatServer:
    def __init__(self, latency_s: float = 0.0, retry_after_s: float = 0.05, hang_s: float = 3.0,
                 default: str = "ok", script: dict[str, list[str]] | None = None, model: str = "glm-4"):
        self.latency_s = latency_s
        self.retry_after_s = retry_after_s
        self.hang_s = min(hang_s, 30.0)
        self.default = default
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.model = model
        self.received: Counter[str] = Counter()
        # per request-cache key (model, messages, sampling parameters): what the client pays for
        self.received_requests: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.behaviours: Counter[str] = Counter()
        self.seen_auth: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.received_at: list[float] = []  # monotonic time of every chat request
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner = None
        self.port: int | None = None

    # ---- lifecycle -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeChatServer":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake chat server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        try:
            fut.result(5)
        except Exception:  # noqa: BLE001 - best effort on shutdown
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop = None

    def __enter__(self) -> "FakeChatServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        from aiohttp import web

        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        # handler_cancellation: a handler stops when its client hangs up (a timed-out or killed client)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    # ---- behaviour -----------------------------------------------------------------------------
    def _pick(self, user: str) -> str:
        with self._lock:
            for needle, queue in self.script.items():
                if needle in user and queue:
                    return queue.pop(0)
        return self.default

    async def _models(self, request):
        from aiohttp import web

        self.seen_auth.add(request.headers.get("Authorization", ""))
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request):
        from aiohttp import web

        body = await request.json()
        self.seen_auth.add(request.headers.get("Authorization", ""))
        user = next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        key = item_key(user)
        behaviour = self._pick(user)
        from .request_cache import request_key

        rkey = request_key(body.get("model", ""), body.get("messages", []),
                           {k: body.get(k) for k in ("temperature", "top_p", "max_tokens")})
        with self._lock:
            self.received[key] += 1
            self.received_requests[rkey] += 1
            self.behaviours[behaviour] += 1
            self.received_at.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._respond(request, key, user, behaviour)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _respond(self, request, key: str, user: str, behaviour: str):
        from aiohttp import web

        if behaviour == "429":
            return web.json_response({"error": {"message": "rate limited", "type": "rate_limit"}}, status=429,
                                     headers={"Retry-After": str(self.retry_after_s)})
        if behaviour == "500":
            return web.json_response({"error": {"message": "internal error"}}, status=500)
        if behaviour == "bad_request":
            return web.json_response({"error": {"message": "bad request"}}, status=400)
        if behaviour == "malformed":
            return web.Response(text='{"id": "x", "choices": [ {"message": ', content_type="application/json")
        if behaviour == "hang":
            await asyncio.sleep(self.hang_s)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        lab = _LABEL_RE.search(user)
        if lab:
            content = json.dumps(_label_for(lab.group(1)), ensure_ascii=False)
            if behaviour == "bad_label":
                content = "这条指令大概属于金融吧。"
        else:
            content = json.dumps(_answer_for(user), ensure_ascii=False)
        finish = "stop"
        if behaviour == "truncated":
            content = "```json\n" + content[: max(10, int(len(content) * 0.6))]
            finish = "length"
        payload: dict[str, Any] = {
            "id": f"chatcmpl-{key}", "object": "chat.completion", "created": int(time.time()), "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": len(user), "completion_tokens": len(content),
                      "total_tokens": len(user) + len(content)},
        }
        resp = web.json_response(payload)
        try:
            await resp.prepare(request)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):  # the client gave up (timeout) or was killed
            return resp
        with self._lock:
            self.answered[key] += 1
        return resp

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"received": dict(self.received), "answered": dict(self.answered),
                    "behaviours": dict(self.behaviours), "max_in_flight": self.max_in_flight}


def main() -> None:  # pragma: no cover - manual use: python -m synthesis.testserver --latency 0.2
    import argparse

    ap = argparse.ArgumentParser(description="local OpenAI-compatible chat server (loopback only)")
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    a = ap.parse_args()
    with FakeChatServer(latency_s=a.latency) as s:
        print(s.base_url, flush=True)
        time.sleep(min(a.seconds, 3600))


if __name__ == "__main__":  # pragma: no cover
    main()
