"""The review app in a real headless Chromium (Debian's, driven by playwright): keyboard review,
escaping, two annotators on one item, and a server killed mid-session.

Skips, saying why, without /usr/bin/chromium (scripts/system_deps.sh installs it) or playwright.
"""
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from synthesis.items import QAItem
from synthesis.store import ReviewStore

from .review_server import ReviewServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium (run scripts/system_deps.sh as root)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        # playwright gives every launch a fresh temporary profile (its --user-data-dir); it never
        # downloads a browser here: it drives Debian's chromium
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def server(review_run):
    srv = ReviewServer(review_run / "review.sqlite").start()
    yield srv
    srv.stop()


def _page(browser, srv, name):
    ctx = browser.new_context(viewport={"width": 1400, "height": 820}, locale="zh-CN")
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(srv.url + "/")
    page.fill("#login-input", name)
    page.press("#login-input", "Enter")
    page.wait_for_selector("#question:not(:empty)")
    return page


def _at(page, n):
    # locator assertions, not wait_for_function: the page's CSP (script-src 'self') forbids eval
    expect(page.locator("#item-pos")).to_have_text(re.compile(rf"^{n} /"))


def _state(db, item_id):
    with ReviewStore(db, readonly=True) as st:
        return st.get(item_id)


def test_approve_edit_reject_by_keyboard(browser, server, review_run):
    db = review_run / "review.sqlite"
    page = _page(browser, server, "张三")
    ids = [page.text_content("#item-id")]
    page.keyboard.press("a")
    _at(page, 2)
    ids.append(page.text_content("#item-id"))
    page.keyboard.press("e")
    page.keyboard.type("（已核对）")
    page.keyboard.press("Control+Enter")
    _at(page, 3)
    ids.append(page.text_content("#item-id"))
    page.keyboard.press("r")
    page.keyboard.type("与原文不符")
    page.keyboard.press("Control+Enter")
    _at(page, 4)
    page.keyboard.press("k")
    _at(page, 3)
    assert page.text_content("#item-status") == "已驳回"
    page.keyboard.press("j")
    _at(page, 4)
    a, e, r = (_state(db, i) for i in ids)
    assert a.status == "approved" and a.final_answer == a.item.answer
    assert e.status == "approved" and e.final_answer == e.item.answer + "（已核对）"
    assert r.status == "rejected" and r.decisions[-1].comment == "与原文不符"
    assert {d.annotator for s in (a, e, r) for d in s.decisions} == {"张三"}
    assert page.text_content("#count-approved") == "已通过 2"
    page.click("#lang")
    assert page.text_content("#count-approved") == "Approved 2" and page.text_content("#btn-approve").startswith("Approve")
    page.context.close()


def test_script_in_a_passage_shows_as_text(browser):
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "review.sqlite"
        evil = "<script>alert(1)</script>"
        with ReviewStore(db) as st:
            st.add_items([QAItem(
                item_id="qxss", task_type="qa", origin="rules", question="<b>第一条</b>规定了什么？<img src=x onerror=alert(2)>",
                answer="第一条 为了规范审计工作，制定本法。" + evil, doc_id="d1", doc_group="g1", title=evil + "审计法",
                context="第一条 为了规范审计工作，制定本法。" + evil + "\n第二条 <img src=x onerror=alert(3)>国家实行审计监督制度。")])
        srv = ReviewServer(db).start()
        try:
            page = _page(browser, srv, "<i>李四</i>")
            assert evil in page.text_content("#passage") and evil in page.text_content("#doc-title")
            assert page.text_content("#question").startswith("<b>第一条</b>")
            assert page.locator("#passage script, #passage img, #question b, #question img").count() == 0
            assert page.locator("#passage mark").count() >= 1  # the supporting sentence is highlighted
            assert page.text_content("#whoami").startswith("<i>李四</i>")
            page.keyboard.press("a")
            expect(page.locator("#item-status")).to_have_text("已通过")
            page.wait_for_timeout(300)
            assert page.dialogs == []  # no alert() ever ran
            assert _state(db, "qxss").decisions[0].annotator == "<i>李四</i>"
            page.context.close()
        finally:
            srv.stop()


def test_two_annotators_edit_one_item_both_versions_survive(browser, server, review_run):
    db = review_run / "review.sqlite"
    alice = _page(browser, server, "alice")
    bob = _page(browser, server, "bob")
    item_id = alice.text_content("#item-id")
    assert bob.text_content("#item-id") == item_id
    alice.keyboard.press("e")
    alice.keyboard.type("（甲）")
    alice.keyboard.press("Control+Enter")
    _at(alice, 2)
    bob.keyboard.press("e")
    bob.keyboard.type("（乙）")
    bob.keyboard.press("Control+Enter")
    bob.wait_for_selector("#stale:not([hidden])")
    assert "（甲）" in bob.text_content("#stale-theirs") and "（乙）" in bob.text_content("#stale-yours")
    s = _state(db, item_id)
    assert s.status == "approved" and s.final_answer.endswith("（甲）")  # nothing overwritten
    with ReviewStore(db, readonly=True) as st:
        stale = [a for a in st.audit_for(item_id) if a["action"] == "stale_save"]
    assert stale[0]["actor"] == "bob" and stale[0]["after"]["edited_answer"].endswith("（乙）")
    bob.click("#stale-keep")
    _at(bob, 2)
    s = _state(db, item_id)
    assert s.status == "conflict" and {(d.annotator, d.edited_answer[-3:]) for d in s.decisions} == {
        ("alice", "（甲）"), ("bob", "（乙）")}
    # the lead sees both side by side and settles it
    alice.select_option("#f-status", "conflict")
    alice.wait_for_selector("#conflict:not([hidden])")
    assert alice.locator("#conflict-versions .version").count() == 2
    assert "（甲）" in alice.text_content("#conflict-v0") and "（乙）" in alice.text_content("#conflict-v1")
    alice.click("#conflict-v1 button.adopt")
    expect(alice.locator("#count-conflict")).to_have_text(re.compile(r" 0$"))
    s = _state(db, item_id)
    assert s.status == "approved" and s.final_answer.endswith("（乙）") and s.decisions[-1].resolves_conflict
    alice.context.close()
    bob.context.close()


def test_server_killed_mid_session_loses_no_decision(browser, review_run):
    db = review_run / "review.sqlite"
    srv = ReviewServer(db).start()
    try:
        page = _page(browser, srv, "张三")
        first = page.text_content("#item-id")
        page.keyboard.press("a")
        _at(page, 2)
        second = page.text_content("#item-id")
        srv.kill()  # SIGKILL: no clean shutdown
        page.keyboard.press("a")  # made while the server is down
        page.wait_for_selector("#banner:not([hidden])")
        srv.start()  # same store, same port
        _at(page, 3)
        page.wait_for_selector("#banner", state="hidden")
        third = page.text_content("#item-id")
        page.keyboard.press("r")  # the session survived the restart: no new sign-in
        page.keyboard.type("重复")
        page.keyboard.press("Enter")
        _at(page, 4)
        assert [_state(db, i).status for i in (first, second, third)] == ["approved", "approved", "rejected"]
        page.context.close()
    finally:
        srv.stop()
