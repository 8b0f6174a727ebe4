"""The review app over HTTP, served for real: sign-in, CSRF, origin and host checks, stale saves,
no path into the file system, and refusal to serve beyond loopback without tokens."""
import subprocess
import sys

import httpx
import pytest

from synthesis.store import ReviewStore

from .review_server import REPO, ReviewServer


@pytest.fixture
def served(review_run):
    srv = ReviewServer(review_run / "review.sqlite").start()
    yield srv
    srv.stop()


def _login(srv, **body):
    c = httpx.Client(base_url=srv.url, timeout=10)
    r = c.post("/api/login", json=body, headers={"X-Requested-With": "soaes-review"})
    assert r.status_code == 200, r.text
    return c, r.json()["csrf"]


def test_decisions_need_session_csrf_and_same_origin(served, review_run):
    c, csrf = _login(served, name="张三")
    page = c.get("/api/items", params={"limit": 5, "offset": 2}).json()
    with ReviewStore(review_run / "review.sqlite") as st:
        everything = [x.item.item_id for x in st.list_items()]
    assert [x["item_id"] for x in page["items"]] == everything[2:7] and page["total"] == len(everything)
    item = c.get("/api/items", params={"status": "pending"}).json()["items"][0]
    url = f"/api/items/{item['item_id']}/decision"
    body = {"decision": "accept", "version": item["version"]}
    assert c.post(url, json=body).status_code == 403  # no CSRF token
    assert c.post(url, json=body, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert c.post(url, json=body, headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}).status_code == 403
    assert c.post(url, content="decision=accept", headers={"X-CSRF-Token": csrf,
                  "Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    anon = httpx.post(served.url + url, json=body, headers={"X-CSRF-Token": csrf})
    assert anon.status_code == 401  # the token alone is not a session
    assert httpx.get(served.url + "/", headers={"Host": "rebind.example:80"}).status_code == 403
    r = c.post(url, json=body, headers={"X-CSRF-Token": csrf, "Origin": served.url})
    assert r.status_code == 200 and r.json()["item"]["status"] == "approved"
    # a second save on the version the annotator opened is stale: 409 with both versions
    r = c.post(url, json={"decision": "reject", "reason": "无依据", "version": item["version"]},
               headers={"X-CSRF-Token": csrf})
    assert r.status_code == 409
    assert r.json()["yours"]["decision"] == "reject" and r.json()["current"]["status"] == "approved"
    with ReviewStore(review_run / "review.sqlite") as st:
        s = st.get(item["item_id"])
        assert s.status == "approved" and [d.annotator for d in s.decisions] == ["张三"]
        assert [a["action"] for a in st.audit_for(item["item_id"])] == ["decision", "stale_save"]
    page = c.get("/")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"] and "<script src=\"/app.js\"" in page.text
    for path in ("/../../etc/passwd", "/static/../server.py", "/app.js/../../store.py", "/%2e%2e/%2e%2e/etc/passwd",
                 "/api/items/..%2F..%2Fetc%2Fpasswd"):
        r = c.get(path)
        assert r.status_code in (403, 404) and "root:" not in r.text, path


def test_tokens_required_beyond_loopback_and_once_users_exist(review_run):
    db = review_run / "review.sqlite"
    r = subprocess.run([sys.executable, "-c", "from soaes.cli import main; main()", "review", "serve", "--db", str(db),
                        "--host", "0.0.0.0", "--port", "9"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "refusing to serve on 0.0.0.0 without annotator tokens" in r.stderr
    r = subprocess.run([sys.executable, "-c", "from soaes.cli import main; main()", "review", "add-user", "王五",
                        "--db", str(db), "--lead"], cwd=REPO, capture_output=True, text=True, timeout=120)
    token = r.stdout.split("token: ")[1].split()[0]
    with ReviewStore(db) as st:
        assert [(u.name, u.role) for u in st.users()] == [("王五", "lead")]
        assert token not in db.read_bytes().decode("latin-1")  # only its hash is stored
    with ReviewStore(db) as st:
        annotator_token = st.add_user("赵六")
        item = st.list_items(limit=1)[0]
    srv = ReviewServer(db).start()
    try:
        h = {"X-Requested-With": "soaes-review"}
        a, a_csrf = _login(srv, token=annotator_token)
        body = {"decision": "accept", "version": item.version}
        r = a.post(f"/api/items/{item.item.item_id}/resolve", json=body, headers={"X-CSRF-Token": a_csrf})
        assert r.status_code == 403 and r.json()["error"] == "lead_only"  # only a lead settles
        r = a.post(f"/api/items/{item.item.item_id}/decision", json=body, headers={"X-CSRF-Token": a_csrf})
        assert r.status_code == 200 and r.json()["item"]["decisions"][0]["annotator"] == "赵六"
        assert httpx.get(srv.url + "/api/session").json()["mode"] == "token"
        assert httpx.post(srv.url + "/api/login", json={"name": "王五"}, headers=h).status_code == 403
        assert httpx.post(srv.url + "/api/login", json={"token": "wrong"}, headers=h).status_code == 403
        c, csrf = _login(srv, token=token)
        assert c.get("/api/session").json()["user"] == {"name": "王五", "role": "lead"}
        assert c.get("/api/overview").status_code == 200
        assert httpx.get(srv.url + "/api/overview").status_code == 401
        # users added or re-keyed while the server runs apply at once, without a restart
        with ReviewStore(db) as st:
            new_token = st.add_user("孙七")
        n, _ = _login(srv, token=new_token)
        assert n.get("/api/session").json()["user"]["name"] == "孙七"
        with ReviewStore(db) as st:
            st.add_user("赵六")  # re-keyed: the session opened with the old token is signed out
        assert a.get("/api/overview").status_code == 401
        assert httpx.post(srv.url + "/api/login", json={"token": annotator_token}, headers=h).status_code == 403
    finally:
        srv.stop()
