"""Rebuild docs/review_app.png (and docs/review_app_conflict.png): the review app served for real on a
store made by the rules generator from the bundled laws, in headless Debian chromium.

    .venv/bin/python scripts/review_app_screenshot.py   # needs /usr/bin/chromium and playwright
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    from synthesis.pipeline import run_synthesis
    from synthesis.store import ReviewStore
    from tests.synthesis.review_server import ReviewServer

    os.chdir(REPO)
    with tempfile.TemporaryDirectory() as d:
        out = run_synthesis("configs/demo/synth_stage2.yaml", [f"output_dir={d}/run", "source.limit=12",
                                                                "review.required=true"], progress=False)
        with ReviewStore(out / "review.sqlite") as st:
            items = st.list_pending()
            for s in items[:3]:
                st.record_decision(s.item.item_id, "accept", "张三")
            st.record_decision(items[3].item.item_id, "reject", "李四", comment="与原文不符")
            c = items[4].item
            st.record_decision(c.item_id, "accept", "张三", edited_answer=c.answer + "（以现行有效文本为准。）")
            st.record_decision(c.item_id, "reject", "李四", comment="答案未覆盖第二款")
        srv = ReviewServer(out / "review.sqlite").start()
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
                page = b.new_page(viewport={"width": 1400, "height": 800})
                page.goto(srv.url + "/")
                page.fill("#login-input", "王主管")
                page.press("#login-input", "Enter")
                page.wait_for_selector("#question:not(:empty)")
                for _ in range(6):
                    page.keyboard.press("j")
                expect(page.locator("#item-pos")).to_have_text(__import__("re").compile(r"^7 /"))
                page.keyboard.press("e")
                page.keyboard.type("（已核对）")
                page.screenshot(path=str(REPO / "docs" / "review_app.png"))
                page.keyboard.press("Escape")
                page.select_option("#f-status", "conflict")
                page.wait_for_selector("#conflict:not([hidden])")
                page.screenshot(path=str(REPO / "docs" / "review_app_conflict.png"))
                b.close()
        finally:
            srv.stop()
    print("wrote docs/review_app.png, docs/review_app_conflict.png")


if __name__ == "__main__":
    main()
