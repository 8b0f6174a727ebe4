"""The review round trip against a REAL Label Studio server (not in CI: Label Studio pins many packages,
so it lives in its own virtualenv). Revisions, a second export, a settled conflict; at the end the
review store must match Label Studio's latest state.

Set-up (once; Label Studio 1.23.x in a separate venv, bound to loopback, a preset legacy token):

    python3.11 -m venv /work/lsvenv && /work/lsvenv/bin/pip install "label-studio>=1.23,<1.24"
    /work/lsvenv/bin/label-studio start --no-browser --internal-host 127.0.0.1 -p 8877 \\
        --data-dir /tmp/ls-data --username lead@example.org --password 'Lead-pass-1234' \\
        --user-token 0123456789abcdef0123456789abcdef01234567 --enable-legacy-api-token

Then:  .venv/bin/python scripts/labelstudio_roundtrip.py --url http://127.0.0.1:8877 --token 0123…4567

Annotations are made through Label Studio's REST API as two annotators (``completed_by``) and the
lead; every export/import goes through `soaes review` commands exactly as a user runs them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CONFIG = REPO / "configs" / "demo" / "synth_stage2.yaml"


def soaes(*args: str) -> str:
    r = subprocess.run([sys.executable, "-c", "from soaes.cli import main; main()", *args], cwd=REPO,
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if r.returncode != 0:
        raise SystemExit(f"soaes {' '.join(args)} failed: {r.stderr.strip()}")
    print("  $ soaes", " ".join(a if len(a) < 60 else "…" + a[-40:] for a in args))
    for line in r.stdout.strip().splitlines()[:4]:
        print("    " + line)
    return r.stdout


def main() -> int:
    import httpx

    from synthesis.store import ReviewStore

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8877")
    ap.add_argument("--token", default=os.environ.get("LS_TOKEN", ""))
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="ls_roundtrip_"))
    run = work / "run"
    ls = httpx.Client(base_url=a.url, headers={"Authorization": f"Token {a.token}"}, timeout=300)
    version = ls.get("/api/version").json()["release"]
    print(f"Label Studio {version} at {a.url}; work dir {work}")
    loc = [str(CONFIG), "--set", "source.limit=2", "--set", "review.required=true", "-o", str(run)]
    soaes("synth", "run", *loc)

    # users: two annotators and the lead (the token's user)
    existing = {u["email"]: u["id"] for u in ls.get("/api/users/").json()}
    for email in ("alice@example.org", "bob@example.org"):
        if email not in existing:
            ls.post("/api/users/", json={"email": email, "username": email.split("@")[0]}).raise_for_status()
    users = ls.get("/api/users/").json()
    (work / "users.json").write_text(json.dumps(users, ensure_ascii=False), encoding="utf-8")
    uid = {u["email"]: u["id"] for u in users}
    alice, bob, lead = uid["alice@example.org"], uid["bob@example.org"], ls.get("/api/current-user/whoami").json()["id"]

    def new_project(title: str, export_dir: Path) -> tuple[int, list[dict]]:
        cfg = (export_dir / "labeling_config.xml").read_text(encoding="utf-8")
        p = ls.post("/api/projects/", json={"title": title, "label_config": cfg}).json()
        tasks = json.loads((export_dir / "tasks.json").read_text(encoding="utf-8"))
        ls.post(f"/api/projects/{p['id']}/import", json=tasks).raise_for_status()
        got = ls.get("/api/tasks/", params={"project": p["id"], "page_size": 1000}).json()
        got = got["tasks"] if isinstance(got, dict) else got
        return p["id"], sorted(got, key=lambda t: t["id"])

    def annotate(task: dict, user: int, decision: str, answer: str | None = None, cancelled: bool = False) -> int:
        result = [] if cancelled else [{"from_name": "decision", "to_name": "question", "type": "choices",
                                        "value": {"choices": [decision]}}]
        if answer and not cancelled:
            result.append({"from_name": "answer", "to_name": "question", "type": "textarea",
                           "value": {"text": [answer]}})
        r = ls.post(f"/api/tasks/{task['id']}/annotations/", json={"result": result, "completed_by": user,
                                                                   "was_cancelled": cancelled})
        r.raise_for_status()
        return r.json()["id"]

    def revise(ann_id: int, decision: str) -> None:
        ls.patch(f"/api/annotations/{ann_id}/", json={"result": [
            {"from_name": "decision", "to_name": "question", "type": "choices", "value": {"choices": [decision]}}]}
        ).raise_for_status()

    def export(project: int, name: str) -> Path:
        r = ls.get(f"/api/projects/{project}/export", params={"exportType": "JSON", "download_all_tasks": "true"})
        r.raise_for_status()
        path = work / name
        path.write_bytes(r.content)
        return path

    def do_import(path: Path) -> str:
        return soaes("review", "import", *loc, str(path), "--users", str(work / "users.json"))

    print("\n1. export 8 pending items to Label Studio, annotate as alice and bob, import")
    soaes("review", "export", *loc, str(work / "ls1"), "--format", "labelstudio", "--limit", "8")
    p1, t = new_project("soaes review round 1", work / "ls1")
    annotate(t[0], alice, "accept")
    annotate(t[1], alice, "accept", t[1]["data"]["answer"] + "（经审核补充：以现行有效文本为准。）")
    annotate(t[2], bob, "reject")
    annotate(t[3], alice, "accept")
    annotate(t[3], bob, "reject")                    # a conflict
    revised = annotate(t[4], alice, "accept")        # revised twice below
    annotate(t[5], alice, "accept", cancelled=True)  # skipped
    out = do_import(export(p1, "round1.json"))
    assert "CONFLICTS (1)" in out, out

    print("\n2. alice revises task 5: accept -> reject -> accept, one import after each")
    for n, decision in enumerate(("reject", "accept")):
        revise(revised, decision)
        do_import(export(p1, f"round1_rev{n + 1}.json"))
    item4 = t[4]["data"]["item_id"]
    with ReviewStore(run / "review.sqlite") as st:
        audit = st.audit_for(item4)
        print(f"  task 5: status {st.get(item4).status}, audit {[x['after']['status'] for x in audit]}")
        assert st.get(item4).status == "approved" and len(audit) == 3

    print("\n3. a second export sends only what was never exported")
    soaes("review", "export", *loc, str(work / "ls2"), "--format", "labelstudio", "--limit", "5")
    second = {x["data"]["item_id"] for x in json.loads((work / "ls2" / "tasks.json").read_text(encoding="utf-8"))}
    first = {x["data"]["item_id"] for x in t}
    print(f"  overlap with the first export: {len(second & first)} of {len(second)}")
    assert second and not (second & first)
    p2, t2 = new_project("soaes review round 2", work / "ls2")
    annotate(t2[0], bob, "accept")
    do_import(export(p2, "round2.json"))

    print("\n4. the lead settles the conflict through a --conflicts export")
    soaes("review", "export", *loc, str(work / "ls_conf"), "--format", "labelstudio", "--conflicts")
    p3, t3 = new_project("soaes review conflicts", work / "ls_conf")
    assert len(t3) == 1 and t3[0]["data"]["resolve"] is True and "bob@example.org" in t3[0]["data"]["review_notes"]
    settled_answer = t3[0]["data"]["answer"] + "（负责人裁定）"
    annotate(t3[0], lead, "accept", settled_answer)
    do_import(export(p3, "conflicts.json"))
    status = json.loads(soaes("review", "status", *loc, "--json"))
    assert status["counts"]["conflict"] == 0 and status["conflicts"] == []

    print("\n5. the store against Label Studio's latest state")
    latest: dict[str, tuple[str, str | None]] = {}  # item -> expected (status, final answer)
    for project in (p1, p2, p3):
        for task in json.loads(export(project, f"final_{project}.json").read_text(encoding="utf-8")):
            item, answer = task["data"]["item_id"], task["data"]["answer"]
            anns = [x for x in task["annotations"] if not x["was_cancelled"]]
            if not anns:
                latest.setdefault(item, ("pending", None))
                continue
            verdicts = set()
            for x in anns:  # each annotator's (single, latest) annotation in this task
                d = {r["from_name"]: r["value"] for r in x["result"]}
                choice = d["decision"]["choices"][0]
                text = "\n".join(d["answer"]["text"]) if "answer" in d else None
                verdicts.add((choice, text if choice == "accept" and text != answer else None))
            if task["data"].get("resolve"):
                (v,) = verdicts
                latest[item] = ("approved" if v[0] == "accept" else "rejected", v[1] or answer)
            elif item not in latest or latest[item][0] == "pending":
                if len(verdicts) > 1:
                    latest[item] = ("conflict", None)
                else:
                    (v,) = verdicts
                    latest[item] = ("approved", v[1] or answer) if v[0] == "accept" else ("rejected", None)
    mismatches = []
    with ReviewStore(run / "review.sqlite") as st:
        for item, (status_, final) in latest.items():
            s = st.get(item)
            if (s.status, s.final_answer) != (status_, final):
                mismatches.append((item, (s.status, s.final_answer), (status_, final)))
        names = sorted({d.annotator for item in latest for d in st.get(item).decisions})
        counts = st.status_counts()
    print(f"  {len(latest)} items in Label Studio; mismatches with the store: {len(mismatches)}")
    for m in mismatches:
        print("   ", m)
    print(f"  annotators in the store: {names}")
    print(f"  store counts: {counts}")
    again = do_import(work / "round1_rev2.json")
    assert "recorded 0" in again
    print("\n6. rebuild the shards: exactly the approved (edited) answers flow on")
    soaes("synth", "run", *loc)
    from corpora_manifests.shards import iter_rows

    rows = {r["id"]: r for stage in ("sft_stage2", "eval") for r in iter_rows(run / stage)}
    want = {i: f for i, (s_, f) in latest.items() if s_ == "approved"}
    ok_rows = set(rows) == set(want) and all(rows[i]["messages"][-1]["content"] == f for i, f in want.items())
    print(f"  rows in shards: {len(rows)}; approved in Label Studio: {len(want)}; answers equal: {ok_rows}")
    ok = not mismatches and ok_rows and "labelstudio:" not in " ".join(names)
    print("\nRESULT:", "the store matches Label Studio's latest state" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
