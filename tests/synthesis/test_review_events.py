"""Decisions are events: revisions across imports, the audit, settling conflicts, export selection,
annotator names, optimistic concurrency, and the review CLI following `synth run -o DIR`."""
import copy
import csv
import json

from typer.testing import CliRunner

from soaes.cli import app
from synthesis.review_io import export_items, import_decisions
from synthesis.store import ReviewStore

from .conftest import DEMO_CONFIG, SYNTH_FIXTURES


def _ls_task(tasks, n, user, decision, updated_at, ann_id=501, answer=None):
    t = copy.deepcopy(tasks[n])
    result = [{"value": {"choices": [decision]}, "id": "d", "from_name": "decision", "to_name": "question",
               "type": "choices", "origin": "manual"}]
    if answer:
        result.append({"value": {"text": [answer]}, "id": "a", "from_name": "answer", "to_name": "question",
                       "type": "textarea", "origin": "manual"})
    t["annotations"] = [{"id": ann_id, "completed_by": user, "result": result, "was_cancelled": False,
                         "ground_truth": False, "created_at": "2026-11-21T09:00:00.000000Z",
                         "updated_at": updated_at, "task": t["id"], "project": 7}]
    return t


def test_accept_reject_accept_across_three_imports_ends_accepted_with_three_events(review_run, tmp_path):
    tasks = json.loads((SYNTH_FIXTURES / "labelstudio_export.json").read_text(encoding="utf-8"))
    item_id = tasks[5]["data"]["item_id"]  # not annotated in the fixture
    with ReviewStore(review_run / "review.sqlite") as st:
        for n, (decision, when) in enumerate([("accept", "2026-11-22T08:00:00.000000Z"),
                                              ("reject", "2026-11-22T09:00:00.000000Z"),
                                              ("accept", "2026-11-22T10:00:00.000000Z")]):
            f = tmp_path / f"export{n}.json"
            f.write_text(json.dumps([_ls_task(tasks, 5, 3, decision, when)]), encoding="utf-8")
            rep = import_decisions(st, f, users={"3": "alice@example.org"})
            assert rep.recorded == 1
            assert st.get(item_id).status == ("approved" if decision == "accept" else "rejected")
            assert import_decisions(st, f).recorded == 0  # the same state again: nothing new
        audit = st.audit_for(item_id)
        assert [a["after"]["status"] for a in audit] == ["approved", "rejected", "approved"]
        assert [a["before"]["status"] for a in audit] == ["pending", "approved", "rejected"]
        assert {a["actor"] for a in audit} == {"alice@example.org"} and len(st.get(item_id).decisions) == 3
        assert {d.source_id for d in st.get(item_id).decisions} == {"ls:501"}
        # without a user map: the e-mail in "created_username" (annotations API), else labelstudio:<id>
        other = tasks[6]["data"]["item_id"]
        t = _ls_task(tasks, 6, 9, "accept", "2026-11-22T08:00:00.000000Z", ann_id=777)
        t["annotations"][0]["created_username"] = " carol@example.org, 9"
        (tmp_path / "carol.json").write_text(json.dumps([t]), encoding="utf-8")
        import_decisions(st, tmp_path / "carol.json")
        assert st.get(other).decisions[-1].annotator == "carol@example.org"
        # an older export imported late does not override the newer decision
        f = tmp_path / "old.json"
        f.write_text(json.dumps([_ls_task(tasks, 5, 3, "reject", "2026-11-22T08:30:00.000000Z")]), encoding="utf-8")
        assert import_decisions(st, f).recorded == 1 and st.get(item_id).status == "approved"


def _csv_rows(path):
    return list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))


def _write_csv(path, rows):
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_untimed_csv_revisions_and_conflict_settled_through_a_conflicts_export(review_run, tmp_path):
    with ReviewStore(review_run / "review.sqlite") as st:
        assert export_items(st, tmp_path / "a.csv", "csv") > 3
        rows = _csv_rows(tmp_path / "a.csv")
        # a second export to the same target repeats nothing; --all does
        assert export_items(st, tmp_path / "again.csv", "csv") == 0
        assert export_items(st, tmp_path / "all.csv", "csv", everything=True) == len(rows)
        x, y = rows[0]["item_id"], rows[1]["item_id"]
        for n, verdict in enumerate(["通过", "驳回", "通过"]):  # no decided_at column values: untimed
            r = dict(rows[0], decision=verdict, annotator="张三")
            _write_csv(tmp_path / f"r{n}.csv", [r])
            assert import_decisions(st, tmp_path / f"r{n}.csv").recorded == 1
            assert import_decisions(st, tmp_path / f"r{n}.csv").recorded == 0
        assert st.get(x).status == "approved" and len(st.audit_for(x)) == 3
        # two annotators disagree on y
        _write_csv(tmp_path / "c.csv", [dict(rows[1], decision="accept", annotator="张三", edited_answer="甲的答案。"),
                                        dict(rows[1], decision="reject", annotator="李四", comment="无依据")])
        rep = import_decisions(st, tmp_path / "c.csv")
        assert rep.conflicts == [y] and st.get(y).status == "conflict"
        # the lead gets exactly the conflicts, with the disagreeing decisions spelled out
        assert export_items(st, tmp_path / "conf.jsonl", "jsonl", conflicts=True) == 1
        (rec,) = [json.loads(line) for line in (tmp_path / "conf.jsonl").read_text(encoding="utf-8").splitlines()]
        assert rec["item_id"] == y and rec["resolve"] == 1
        assert "张三" in rec["review_notes"] and "甲的答案。" in rec["review_notes"] and "无依据" in rec["review_notes"]
        assert export_items(st, tmp_path / "conf2.jsonl", "jsonl", conflicts=True) == 0  # already sent
        rec.update(decision="accept", edited_answer="裁定的答案。", annotator="王主管")
        (tmp_path / "settled.jsonl").write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
        rep = import_decisions(st, tmp_path / "settled.jsonl")
        assert rep.resolved == 1
        s = st.get(y)
        assert s.status == "approved" and s.final_answer == "裁定的答案。"
        assert [a["action"] for a in st.audit_for(y)] == ["decision", "decision", "resolve"]


def test_stale_save_is_refused_and_kept_in_the_audit(review_run):
    with ReviewStore(review_run / "review.sqlite") as st:
        s = st.list_pending(limit=1)[0]
        v = s.version
        a = st.record_decision(s.item.item_id, "accept", "alice", edited_answer="甲版本。", expected_version=v)
        assert a.result == "recorded" and a.version == v + 1
        b = st.record_decision(s.item.item_id, "accept", "bob", edited_answer="乙版本。", expected_version=v)
        assert b.result == "stale" and b.version == v + 1
        now = st.get(s.item.item_id)
        assert now.status == "approved" and now.final_answer == "甲版本。" and len(now.decisions) == 1
        stale = [e for e in st.audit_for(s.item.item_id) if e["action"] == "stale_save"]
        assert stale[0]["actor"] == "bob" and stale[0]["after"]["edited_answer"] == "乙版本。"


def test_review_cli_follows_synth_run_output_and_settles_conflicts(review_store_template, tmp_path, in_repo):
    import shutil

    run_dir = tmp_path / "elsewhere"
    shutil.copytree(review_store_template, run_dir)
    r = CliRunner()
    loc = [str(DEMO_CONFIG), "--set", "review.required=true", "-o", str(run_dir)]
    res = r.invoke(app, ["review", "import", *loc, str(SYNTH_FIXTURES / "labelstudio_export.json")])
    assert res.exit_code == 0, res.output
    assert "CONFLICTS (1)" in res.output
    res = r.invoke(app, ["review", "status", *loc, "--json"])
    data = json.loads(res.output)
    assert data["counts"]["conflict"] == 1 and len(data["conflicts"]) == 1
    (conflict,) = data["conflicts"]
    assert {d["decision"] for d in conflict["disagreeing"]} == {"accept", "reject"}
    item = conflict["item_id"]
    # -o alone finds the store too
    res = r.invoke(app, ["review", "resolve", item, "-o", str(run_dir), "--decision", "accept",
                         "--answer", "负责人裁定的答案。", "--by", "lead@example.org"])
    assert res.exit_code == 0 and "conflict -> approved (edited answer)" in res.output
    res = r.invoke(app, ["review", "status", "-o", str(run_dir), "--json"])
    assert json.loads(res.output)["counts"]["conflict"] == 0 and json.loads(res.output)["conflicts"] == []
    res = r.invoke(app, ["review", "resolve", "qnope", "-o", str(run_dir), "--decision", "accept"])
    assert type(res.exception).__name__ == "UserError" and "no item 'qnope'" in str(res.exception)  # exit 2 in main()
    with ReviewStore(run_dir / "review.sqlite") as st:
        s = st.get(item)
        assert s.final_answer == "负责人裁定的答案。" and s.decisions[-1].annotator == "lead@example.org"
        assert s.decisions[-1].resolves_conflict and st.audit_for(item)[-1]["action"] == "resolve"
    res = r.invoke(app, ["review", "export", *loc, str(tmp_path / "ls"), "--format", "labelstudio"])
    assert res.exit_code == 0 and "pending items" in res.output
    again = r.invoke(app, ["review", "export", *loc, str(tmp_path / "ls2"), "--format", "labelstudio"])
    assert "exported 0 pending" in again.output


def test_a_version_1_store_is_migrated_and_keeps_its_decisions(tmp_path):
    import sqlite3

    db = tmp_path / "v1.sqlite"
    con = sqlite3.connect(db)
    con.executescript("""
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta VALUES ('schema_version', '1');
    CREATE TABLE items (item_id TEXT PRIMARY KEY, task_type TEXT NOT NULL, origin TEXT NOT NULL, question TEXT NOT NULL,
      answer TEXT NOT NULL, doc_id TEXT NOT NULL, doc_group TEXT NOT NULL, chunk_id TEXT NOT NULL DEFAULT '',
      title TEXT NOT NULL DEFAULT '', context TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '{}',
      created_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', final_answer TEXT);
    CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL, decision TEXT NOT NULL,
      edited_answer TEXT, annotator TEXT NOT NULL, decided_at TEXT NOT NULL, channel TEXT NOT NULL, comment TEXT,
      resolves_conflict INTEGER NOT NULL DEFAULT 0, fingerprint TEXT NOT NULL UNIQUE, imported_at TEXT NOT NULL);
    INSERT INTO items (item_id, task_type, origin, question, answer, doc_id, doc_group, created_at, status, final_answer)
      VALUES ('q1', 'qa', 'rules', '第一条规定了什么？', '第一条规定：……', 'd', 'g', '2026-01-01', 'approved', '第一条规定：……');
    INSERT INTO decisions (item_id, decision, annotator, decided_at, channel, fingerprint, imported_at)
      VALUES ('q1', 'accept', 'alice', '2026-11-01T08:00:00+08:00', 'csv', 'fp1', '2026-11-01');
    """)
    con.commit()
    con.close()
    with ReviewStore(db, readonly=True) as ro:  # a reader opening it first migrates it
        assert ro.get("q1").status == "approved" and ro.get("q1").version == 0
    with ReviewStore(db) as st:
        out = st.record_decision("q1", "reject", "alice", decided_at="2026-11-02T08:00:00+08:00")
        assert out.status == "rejected" and out.version == 1
        assert [d.decision for d in st.get("q1").decisions] == ["accept", "reject"]
