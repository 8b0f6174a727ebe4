"""`soaes review serve`: the review app for domain experts, on aiohttp (already a dependency of the
test server; no other web framework is pulled in for one page and a JSON API).

Security, in the order a request meets it:

* binds 127.0.0.1 by default; any other address is refused unless the store has annotator tokens
  (`soaes review add-user`), and then only token holders get in;
* the Host header must name this server when bound to loopback (a DNS-rebinding page cannot
  talk to it), and a state-changing request must be same-origin (``Origin``), JSON, and carry the
  session's CSRF token (``X-CSRF-Token``, an HMAC of the session id);
* sessions are HMAC-signed cookies (HttpOnly, SameSite=Strict) keyed by a secret kept in the
  store, so a restarted server keeps everybody signed in;
* the page renders every piece of content with ``textContent`` (never as HTML) under a Content
  Security Policy that allows only this server's own script, so a passage holding HTML or
  ``<script>`` shows as text;
* no endpoint takes a path: the page and its two assets are read from this package at start-up
  and served from memory; everything else comes from the store.

Every decision is committed before the answer is sent (a killed server loses nothing it
acknowledged) and is checked against the item's version the annotator saw (a stale save answers
409 with both versions, never overwrites).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from ..store import DecisionOutcome, ReviewStore, StoredItem

log = logging.getLogger(__name__)

COOKIE = "soaes_review"
STATIC = Path(__file__).resolve().parent / "static"
_ASSETS = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "application/javascript"),
           "/app.css": ("app.css", "text/css")}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_ITEM_ID = re.compile(r"^[A-Za-z0-9_:.-]{1,80}$")
_SENT = re.compile(r"[^。！？；!?;\n]*(?:[。！？；!?;]+|\n+|$)")
STORE_KEY: web.AppKey[ReviewStore] = web.AppKey("store", ReviewStore)
SECRET_KEY: web.AppKey[bytes] = web.AppKey("secret", bytes)
CONF_KEY: web.AppKey[dict] = web.AppKey("conf", dict)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ---- sessions -------------------------------------------------------------------------------------

def _sign(secret: bytes, payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, ensure_ascii=False).encode()).decode()
    mac = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def _unsign(secret: bytes, value: str | None) -> dict[str, Any] | None:
    if not value or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, UnicodeDecodeError):
        return None


def _csrf(secret: bytes, sid: str) -> str:
    return hmac.new(secret, f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()


def _session(request: web.Request) -> dict[str, Any] | None:
    s = _unsign(request.app[SECRET_KEY], request.cookies.get(COOKIE))
    if s is None:
        return None
    store = request.app[STORE_KEY]
    if _token_mode(store):  # read per request: `review add-user` on a running server applies at once
        users = {u.name: u for u in store.users()}
        u = users.get(s.get("name"))
        if u is None or s.get("key") != _user_key(store, u.name):  # removed or re-keyed since signing in: out
            return None
        s["role"] = u.role
    return s


def _token_mode(store: ReviewStore) -> bool:
    """Annotator tokens are required as soon as the store has users (also for sessions opened before)."""
    return bool(store.users())


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


# ---- middleware -----------------------------------------------------------------------------------

@web.middleware
async def _guard(request: web.Request, handler):
    conf = request.app[CONF_KEY]
    if conf["allowed_hosts"] is not None and request.host not in conf["allowed_hosts"]:
        return _error(403, "bad_host", "this server answers only to its own address")
    if request.method not in ("GET", "HEAD"):
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return _error(403, "cross_origin", "cross-origin request refused")
        if request.content_type != "application/json":
            return _error(415, "json_only", "send application/json")
        if request.path != "/api/login":
            s = _session(request)
            token = request.headers.get("X-CSRF-Token", "")
            if s is None:
                return _error(401, "signed_out", "sign in first")
            if not hmac.compare_digest(token, _csrf(request.app[SECRET_KEY], s["sid"])):
                return _error(403, "csrf", "missing or wrong CSRF token")
        elif request.headers.get("X-Requested-With") != "soaes-review":
            return _error(403, "csrf", "missing X-Requested-With")
    try:
        resp = await handler(request)
    except web.HTTPException as e:  # answered as a plain response so the headers below apply
        resp = web.Response(status=e.status, text=e.text, content_type=e.content_type or "text/plain")
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    if request.path.startswith("/api/"):
        resp.headers["Cache-Control"] = "no-store"
    return resp


# ---- helpers --------------------------------------------------------------------------------------

def passage_segments(context: str, answer: str, ngram: int = 3) -> list[dict[str, Any]]:
    """The passage cut into sentences, the ones that support the answer marked ``hl``.

    A sentence supports the answer when most of its character n-grams occur in the answer (a
    quoted article: all its sentences); otherwise the single sentence sharing the most n-grams.
    """
    from ..validation import char_ngrams

    sentences = [m.group(0) for m in _SENT.finditer(context) if m.group(0)]
    if not sentences:
        return []
    agram = char_ngrams(answer, ngram)
    scores = []
    for s in sentences:
        g = char_ngrams(s, ngram)
        shared = len(g & agram)
        scores.append((shared / len(g) if g else 0.0, shared))
    marked = {i for i, (frac, shared) in enumerate(scores) if frac >= 0.6 and shared >= 3}
    if not marked:
        best = max(range(len(sentences)), key=lambda i: scores[i][1])
        if scores[best][1] > 0:
            marked = {best}
    return [{"text": s, "hl": i in marked} for i, s in enumerate(sentences)]


def _decision_json(d) -> dict[str, Any]:
    return {"annotator": d.annotator, "decision": d.decision, "edited_answer": d.edited_answer,
            "decided_at": d.decided_at, "channel": d.channel, "comment": d.comment,
            "resolves_conflict": d.resolves_conflict}


def _item_json(store: ReviewStore, s: StoredItem, user: str | None) -> dict[str, Any]:
    i = s.item
    decisions = store.decisions_for(i.item_id)
    mine = next((d for d in reversed(decisions) if d.annotator == user and not d.resolves_conflict), None)
    return {
        "item_id": i.item_id, "task_type": i.task_type, "origin": i.origin, "title": i.title, "doc_id": i.doc_id,
        "doc_group": i.doc_group, "question": i.question, "answer": i.answer, "final_answer": s.final_answer,
        "status": s.status, "version": s.version, "grounding": i.metadata.get("quality.grounding"),
        "passage": passage_segments(i.context, s.final_answer or i.answer),
        "decisions": [_decision_json(d) for d in decisions],
        "disagreeing": [_decision_json(d) for d in store.effective_decisions(i.item_id)] if s.status == "conflict"
        else [],
        "mine": _decision_json(mine) if mine else None,
    }


# ---- handlers -------------------------------------------------------------------------------------

async def _asset(request: web.Request) -> web.Response:
    body, ctype = request.app[CONF_KEY]["assets"][request.path]
    return web.Response(body=body, content_type=ctype, charset="utf-8")


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _get_session(request: web.Request) -> web.Response:
    s = _session(request)
    user = {"name": s["name"], "role": s["role"]} if s else None
    csrf = _csrf(request.app[SECRET_KEY], s["sid"]) if s else None
    return _json({"user": user, "csrf": csrf, "mode": "token" if _token_mode(request.app[STORE_KEY]) else "open"})


async def _login(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "bad_json", "body is not JSON")
    token_mode = _token_mode(store)
    if token_mode:
        user = store.user_for_token(str(body.get("token") or ""))
        if user is None:
            return _error(403, "bad_token", "unknown token")
        name, role = user.name, user.role
    else:
        name = " ".join(str(body.get("name") or "").split())[:60]
        if not name:
            return _error(400, "no_name", "enter your name")
        role = "lead"  # one trusted machine, no accounts: whoever sits there may settle conflicts
    sid = secrets.token_hex(16)
    payload = {"name": name, "role": role, "sid": sid}
    if token_mode:
        payload["key"] = _user_key(store, name)
    resp = _json({"user": {"name": name, "role": role}, "csrf": _csrf(request.app[SECRET_KEY], sid)})
    resp.set_cookie(COOKIE, _sign(request.app[SECRET_KEY], payload), httponly=True, samesite="Strict", path="/",
                    max_age=14 * 24 * 3600)
    return resp


def _user_key(store: ReviewStore, name: str) -> str:
    # binds a session to the user's current token: re-keying a user (add-user again) signs them out
    row = store._db.execute("SELECT token_sha256 FROM users WHERE name=?", (name,)).fetchone()
    return row[0][:16] if row else ""


async def _logout(request: web.Request) -> web.Response:
    resp = _json({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


def _require(request: web.Request) -> dict[str, Any]:
    s = _session(request)
    if s is None:
        raise web.HTTPUnauthorized(text=json.dumps({"error": "signed_out", "message": "sign in first"}),
                                   content_type="application/json")
    return s


async def _overview(request: web.Request) -> web.Response:
    s = _require(request)
    store = request.app[STORE_KEY]
    mine = store._db.execute("SELECT COUNT(DISTINCT item_id) FROM decisions WHERE annotator=?",
                             (s["name"],)).fetchone()[0]
    out = {"counts": store.status_counts(), "reviewed_by_me": mine}
    if request.query.get("full"):  # the filters' choices: on sign-in and when a filter is opened, not per save
        out.update(documents=store.documents(), annotators=store.annotators())
    return _json(out)


async def _items(request: web.Request) -> web.Response:
    _require(request)
    store = request.app[STORE_KEY]
    q = request.query
    status = q.get("status") or None
    if status and status not in ("pending", "approved", "rejected", "conflict"):
        return _error(400, "bad_status", "unknown status")
    try:
        offset = max(0, int(q.get("offset", 0)))
        limit = min(500, max(1, int(q.get("limit", 100))))
    except ValueError:
        return _error(400, "bad_request", "offset and limit are numbers")
    filters = {"status": status, "doc_group": q.get("doc") or None, "annotator": q.get("annotator") or None}
    items = store.list_summaries(limit=limit, offset=offset, **filters)  # a page: fast on any store size
    return _json({"items": items, "total": store.count_items(**filters), "offset": offset})


def _item_or_404(request: web.Request) -> StoredItem:
    item_id = request.match_info["item_id"]
    s = request.app[STORE_KEY].get(item_id, with_decisions=False) if _ITEM_ID.match(item_id) else None
    if s is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "not_found", "message": "no such item"}),
                               content_type="application/json")
    return s


async def _item(request: web.Request) -> web.Response:
    s = _require(request)
    return _json(_item_json(request.app[STORE_KEY], _item_or_404(request), s["name"]))


async def _decide(request: web.Request) -> web.Response:
    s = _require(request)
    item = _item_or_404(request)
    store = request.app[STORE_KEY]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "bad_json", "body is not JSON")
    resolve = request.path.endswith("/resolve")
    if resolve and s["role"] != "lead":
        return _error(403, "lead_only", "only a lead may settle a conflict")
    decision = body.get("decision")
    answer = body.get("answer")
    reason = (str(body.get("reason") or "").strip() or None)
    version = body.get("version")
    if decision not in ("accept", "reject") or not isinstance(version, int):
        return _error(400, "bad_request", "decision (accept|reject) and version (int) are required")
    if answer is not None and not isinstance(answer, str):
        return _error(400, "bad_request", "answer must be text")
    from ..store import _now

    out: DecisionOutcome = store.record_decision(
        item.item.item_id, decision, s["name"], edited_answer=answer, decided_at=_now(), channel="app",
        comment=reason, resolve=resolve, expected_version=version)
    current = _item_json(store, store.get(item.item.item_id, with_decisions=False), s["name"])
    if out.result == "stale":
        yours = {"annotator": s["name"], "decision": decision, "edited_answer": answer, "comment": reason,
                 "version": version}
        return _json({"error": "stale", "message": out.detail, "yours": yours, "current": current}, 409)
    if out.result != "recorded":
        return _error(400, out.result, out.detail or out.result)
    return _json({"ok": True, "item": current})


# ---- app ------------------------------------------------------------------------------------------

def make_app(store_path: str | Path, host: str = "127.0.0.1", port: int = 8080) -> web.Application:
    store = ReviewStore(store_path)
    assets = {route: ((STATIC / name).read_bytes(), ctype) for route, (name, ctype) in _ASSETS.items()}
    allowed = None
    if is_loopback(host):
        allowed = {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}
    app = web.Application(middlewares=[_guard], client_max_size=1024 * 1024)
    app[STORE_KEY] = store
    app[SECRET_KEY] = store.secret()
    app[CONF_KEY] = {"assets": assets, "allowed_hosts": allowed}
    for route in assets:
        app.router.add_get(route, _asset)
    app.router.add_get("/favicon.ico", _no_icon)
    app.router.add_get("/api/session", _get_session)
    app.router.add_post("/api/login", _login)
    app.router.add_post("/api/logout", _logout)
    app.router.add_get("/api/overview", _overview)
    app.router.add_get("/api/items", _items)
    app.router.add_get("/api/items/{item_id}", _item)
    app.router.add_post("/api/items/{item_id}/decision", _decide)
    app.router.add_post("/api/items/{item_id}/resolve", _decide)

    async def _close(app: web.Application) -> None:
        store.close()

    app.on_cleanup.append(_close)
    return app


def check_can_serve(store_path: str | Path, host: str) -> None:
    """Refuse, with one clear line, what would expose the store: a missing store, or a non-loopback
    address without annotator tokens."""
    from corpora_manifests.errors import UserError

    p = Path(store_path)
    if not p.exists():
        raise UserError(f"review store not found: {p} (run `soaes synth run` first)")
    if not is_loopback(host):
        with ReviewStore(p) as st:
            if not st.users():
                raise UserError(f"refusing to serve on {host} without annotator tokens: add each annotator with "
                                f"`soaes review add-user NAME --db {p}` (or serve on 127.0.0.1)")


def serve(store_path: str | Path, host: str = "127.0.0.1", port: int = 8080) -> None:
    check_can_serve(store_path, host)
    app = make_app(store_path, host, port)
    mode = "annotator tokens" if _token_mode(app[STORE_KEY]) else "open (this machine only; names, no tokens)"
    shown = f"[{host}]" if ":" in host else host
    print(f"review app on http://{shown}:{port}/  store {store_path}  sign-in: {mode}", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=2.0)
