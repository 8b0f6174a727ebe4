"""Review-app latency: 200 consecutive review actions by one annotator against `soaes review serve`.

The server runs for real (a separate process, SQLite store in WAL mode) on a store made by the
`rules` generator from the bundled laws (all 200 documents); one annotator signs in and, like the
page, for each item: POSTs the decision (approve; every 5th an edit, every 7th a reject with a
reason) against the version it opened, then loads what the page loads next (counts, the list
page, the next item). Reported, p50 / p95 / max in ms: the review action (the decision saved
and acknowledged — what the annotator waits for) and the whole page cycle (4 requests); and the
server's CPU time per page cycle, which does not depend on how busy the machine is.
Acceptance: p95 of a review action < 50 ms.

Peer (optional, ``--labelstudio URL --ls-token TOKEN``: a running Label Studio 1.23, see
scripts/labelstudio_roundtrip.py): the same number of items exported with `soaes review export`
and imported into a new project, then the same actions submitted as annotations
(``POST /api/tasks/{id}/annotations/``, Label Studio's own submit) and the next task fetched.

    .venv/bin/python benchmarks/review_latency.py [--actions 200] [--docs 200] [--workdir DIR]
        [--labelstudio http://127.0.0.1:8877 --ls-token TOKEN]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> int:
    import httpx

    from synthesis.pipeline import run_synthesis
    from tests.synthesis.review_server import ReviewServer

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--actions", type=int, default=200)
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--labelstudio", default=None, help="URL of a running Label Studio (the peer)")
    ap.add_argument("--ls-token", default=os.environ.get("LS_TOKEN", ""))
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="review_latency_"))
    out = work / "run"
    os.chdir(REPO)
    if not (out / "review.sqlite").exists():
        run_synthesis("configs/demo/synth_stage2.yaml", [f"output_dir={out}", f"source.limit={a.docs}",
                                                          "review.required=true"], progress=False)
    srv = ReviewServer(out / "review.sqlite").start()
    try:
        c = httpx.Client(base_url=srv.url, timeout=30)
        r = c.post("/api/login", json={"name": "bench"}, headers={"X-Requested-With": "soaes-review"})
        csrf = r.json()["csrf"]
        h = {"X-CSRF-Token": csrf}
        items = c.get("/api/items", params={"status": "pending", "limit": 500}).json()["items"]
        total = c.get("/api/overview").json()["counts"]["total"]
        if len(items) < a.actions:
            raise SystemExit(f"only {len(items)} pending items; use a fresh --workdir")
        import psutil

        server_proc = psutil.Process(srv.proc.pid)
        cpu0 = server_proc.cpu_times()
        save_ms, action_ms = [], []
        item = c.get(f"/api/items/{items[0]['item_id']}").json()
        for n in range(a.actions):
            t0 = time.perf_counter()
            body = {"decision": "accept", "version": item["version"]}
            if n % 7 == 3:
                body = {"decision": "reject", "reason": "与原文不符", "version": item["version"]}
            elif n % 5 == 1:
                body["answer"] = item["answer"] + "（已核对）"
            r = c.post(f"/api/items/{item['item_id']}/decision", json=body, headers=h)
            t1 = time.perf_counter()
            if r.status_code != 200:
                raise SystemExit(f"action {n}: HTTP {r.status_code} {r.text[:200]}")
            c.get("/api/overview")
            c.get("/api/items", params={"status": "pending"})
            item = c.get(f"/api/items/{items[n + 1]['item_id']}").json() if n + 1 < len(items) else item
            t2 = time.perf_counter()
            save_ms.append((t1 - t0) * 1000)
            action_ms.append((t2 - t0) * 1000)
        cpu1 = server_proc.cpu_times()
        cpu_ms = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) * 1000 / a.actions
        load = os.getloadavg()
    finally:
        srv.stop()
    print(f"store: {total} items ({a.docs} documents), {a.actions} consecutive actions by one annotator; "
          f"load average {load[0]:.1f}")
    for name, xs in (("review action (decision saved + acknowledged)", save_ms),
                     ("whole page cycle (save + counts + list page + next item)", action_ms)):
        print(f"{name}: p50 {statistics.median(xs):.1f} ms, p95 {pct(xs, 95):.1f} ms, max {max(xs):.1f} ms")
    print(f"server CPU per page cycle: {cpu_ms:.1f} ms")
    ok = pct(save_ms, 95) < 50
    print("acceptance (p95 of a review action < 50 ms):", "holds" if ok else "FAILS")
    if a.labelstudio:
        ls_save, ls_action = labelstudio_peer(a, out, items[a.actions + 1: 2 * a.actions + 2])
        print(f"load average {os.getloadavg()[0]:.1f}")
        for name, xs, ours in (("Label Studio submit (POST annotation)", ls_save, save_ms),
                               ("Label Studio submit + next task", ls_action, action_ms)):
            print(f"{name}: p50 {statistics.median(xs):.1f} ms, p95 {pct(xs, 95):.1f} ms, max {max(xs):.1f} ms; "
                  f"ours/peer p50 {statistics.median(ours) / statistics.median(xs):.2f}")
    return 0 if ok else 1


def labelstudio_peer(a, out: Path, items: list[dict]) -> tuple[list[float], list[float]]:
    """The same review actions as Label Studio annotations, on tasks from `soaes review export`."""
    import json
    import subprocess

    import httpx

    ids = {x["item_id"] for x in items}
    export_dir = out.parent / "ls_peer"
    subprocess.run([sys.executable, "-c", "from soaes.cli import main; main()", "review", "export", "--db",
                    str(out / "review.sqlite"), str(export_dir), "--format", "labelstudio", "--all"],
                   cwd=REPO, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    tasks = [t for t in json.loads((export_dir / "tasks.json").read_text(encoding="utf-8"))
             if t["data"]["item_id"] in ids][: a.actions + 1]
    ls = httpx.Client(base_url=a.labelstudio, headers={"Authorization": f"Token {a.ls_token}"}, timeout=120)
    cfg = (export_dir / "labeling_config.xml").read_text(encoding="utf-8")
    project = ls.post("/api/projects/", json={"title": "latency peer", "label_config": cfg}).json()["id"]
    ls.post(f"/api/projects/{project}/import", json=tasks).raise_for_status()
    got = ls.get("/api/tasks/", params={"project": project, "page_size": 1000}).json()
    got = sorted(got["tasks"] if isinstance(got, dict) else got, key=lambda t: t["id"])
    save_ms, action_ms = [], []
    for n in range(a.actions):
        task = got[n]
        result = [{"from_name": "decision", "to_name": "question", "type": "choices",
                   "value": {"choices": ["reject" if n % 7 == 3 else "accept"]}}]
        if n % 5 == 1 and n % 7 != 3:
            result.append({"from_name": "answer", "to_name": "question", "type": "textarea",
                           "value": {"text": [task["data"]["answer"] + "（已核对）"]}})
        t0 = time.perf_counter()
        ls.post(f"/api/tasks/{task['id']}/annotations/", json={"result": result}).raise_for_status()
        t1 = time.perf_counter()
        ls.get(f"/api/tasks/{got[n + 1]['id']}")
        t2 = time.perf_counter()
        save_ms.append((t1 - t0) * 1000)
        action_ms.append((t2 - t0) * 1000)
    return save_ms, action_ms


if __name__ == "__main__":
    raise SystemExit(main())
