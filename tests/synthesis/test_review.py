"""The review round trip: store API, JSONL / CSV / Label Studio export and import."""
import csv
import json
import xml.etree.ElementTree as ET

from synthesis.review_io import LABEL_STUDIO_CONFIG, export_pending, import_decisions
from synthesis.store import ReviewStore

from .conftest import SYNTH_FIXTURES


def test_store_decisions_idempotent_conflicts_and_resolution(review_run):
    with ReviewStore(review_run / "review.sqlite") as st:
        a, b = (s.item for s in st.list_pending(limit=2))
        assert st.record_decision(a.item_id, "accept", "alice").status == "approved"
        assert st.record_decision(a.item_id, "accept", "alice").result == "duplicate"
        # a second annotator disagrees: reported as a conflict, the first decision is not overwritten
        out = st.record_decision(a.item_id, "reject", "bob")
        assert out.result == "recorded" and out.conflict and st.get(a.item_id).status == "conflict"
        assert [d.annotator for d in st.get(a.item_id).decisions] == ["alice", "bob"]
        assert [c.item.item_id for c in st.conflicts()] == [a.item_id]
        # an adjudicator settles it
        assert st.record_decision(a.item_id, "accept", "lead", resolve=True, edited_answer="裁定后的答案。").status == "approved"
        assert st.get(a.item_id).final_answer == "裁定后的答案。"
        # an annotator may revise their own decision
        st.record_decision(b.item_id, "accept", "carol", decided_at="2026-01-01T00:00:00+00:00")
        assert st.record_decision(b.item_id, "reject", "carol", decided_at="2026-01-02T00:00:00+00:00").status == "rejected"
        assert st.record_decision("nope", "accept", "x").result == "unknown_item"
        assert st.record_decision(b.item_id, "maybe", "x").result == "invalid"
        counts = st.status_counts()
        assert counts["approved"] == 1 and counts["rejected"] == 1 and counts["edited"] == 1
        assert counts["total"] == counts["pending"] + 2
        # concurrent reader (the review app) sees the same state
        with ReviewStore(review_run / "review.sqlite", readonly=True) as ro:
            assert ro.status_counts() == counts


def test_csv_round_trip_with_bom_edits_and_reimport(review_run, tmp_path):
    with ReviewStore(review_run / "review.sqlite") as st:
        n = export_pending(st, tmp_path / "review.csv", "csv")
        raw = (tmp_path / "review.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and n == st.status_counts()["pending"]
        rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
        assert rows[0]["question"] and "《" in rows[0]["question"]
        rows[0].update(decision="通过", annotator="张三", decided_at="2026-11-21T10:00:00+08:00")
        rows[1].update(decision="accept", edited_answer=rows[1]["answer"] + "（已核对）", annotator="张三")
        rows[2].update(decision="驳回", annotator="李四", comment="与原文不符")
        rows[3].update(decision="perhaps", annotator="李四")
        with (tmp_path / "reviewed.csv").open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        rep = import_decisions(st, tmp_path / "reviewed.csv")
        assert (rep.recorded, len(rep.invalid), rep.skipped_undecided) == (3, 1, len(rows) - 4)
        again = import_decisions(st, tmp_path / "reviewed.csv")
        assert again.recorded == 0 and again.duplicates == 3
        s1 = st.get(rows[1]["item_id"])
        assert s1.status == "approved" and s1.final_answer.endswith("（已核对）")
        d0 = st.get(rows[0]["item_id"]).decisions[0]
        assert (d0.annotator, d0.decided_at, d0.channel) == ("张三", "2026-11-21T10:00:00+08:00", "csv")
        assert st.get(rows[2]["item_id"]).status == "rejected"
        # JSONL export carries only what is still pending
        m = export_pending(st, tmp_path / "next.jsonl", "jsonl")
        assert m == n - 3
        recs = [json.loads(line) for line in (tmp_path / "next.jsonl").read_text(encoding="utf-8").splitlines()]
        assert rows[0]["item_id"] not in {r["item_id"] for r in recs}
        recs[0].update(decision="reject", annotator="王五")
        (tmp_path / "next_done.jsonl").write_text(json.dumps(recs[0], ensure_ascii=False) + "\n{bad\n", encoding="utf-8")
        rep = import_decisions(st, tmp_path / "next_done.jsonl")
        assert rep.recorded == 1 and len(rep.invalid) == 1


def test_labelstudio_export_format(review_run, tmp_path):
    with ReviewStore(review_run / "review.sqlite") as st:
        n = export_pending(st, tmp_path / "ls", "labelstudio", limit=5)
    tasks = json.loads((tmp_path / "ls" / "tasks.json").read_text(encoding="utf-8"))
    assert n == len(tasks) == 5
    cfg = ET.fromstring((tmp_path / "ls" / "labeling_config.xml").read_text(encoding="utf-8"))
    controls = {el.get("name"): el for el in cfg.iter() if el.get("name")}
    assert controls["decision"].tag == "Choices" and [c.get("value") for c in controls["decision"]] == ["accept", "reject"]
    assert controls["answer"].tag == "TextArea" and controls["answer"].get("editable") == "true"
    variables = {el.get("value")[1:] for el in cfg.iter() if (el.get("value") or "").startswith("$")}
    for t in tasks:
        assert variables <= set(t["data"])  # every $variable of the config is in the task data
        (pred,) = t["predictions"]
        by_name = {r["from_name"]: r for r in pred["result"]}
        assert by_name["decision"]["value"] == {"choices": ["accept"]}
        assert by_name["answer"]["value"]["text"] == [t["data"]["answer"]]
        assert all(r["to_name"] in controls for r in pred["result"])
    assert LABEL_STUDIO_CONFIG.count("<Choice ") == 2


def test_labelstudio_json_export_import(review_run):
    fixture = SYNTH_FIXTURES / "labelstudio_export.json"
    tasks = json.loads(fixture.read_text(encoding="utf-8"))
    ids = [t["data"]["item_id"] for t in tasks]
    with ReviewStore(review_run / "review.sqlite") as st:
        rep = import_decisions(st, fixture)
        d = rep.as_dict()
        assert d["recorded"] == 6 and d["cancelled"] == 1 and d["skipped_undecided"] == 1
        assert d["unknown_items"] == 1 and d["conflicts"] == [ids[4]]
        accepted, edited, rejected, cancelled, conflict, untouched, by_object = (st.get(i) for i in ids[:7])
        assert accepted.status == "approved" and accepted.final_answer == accepted.item.answer
        assert edited.status == "approved" and edited.final_answer.endswith("（经审核补充：以现行有效文本为准。）")
        assert rejected.status == "rejected"
        assert cancelled.status == "pending" and untouched.status == "pending"
        assert conflict.status == "conflict" and {x.decision for x in conflict.decisions} == {"accept", "reject"}
        assert by_object.status == "approved" and by_object.decisions[0].annotator == "reviewer@example.org"
        assert accepted.decisions[0].annotator == "labelstudio:3"
        assert accepted.decisions[0].decided_at == "2026-11-21T09:30:00.000000Z"
        assert accepted.decisions[0].channel == "labelstudio"
        before = st.status_counts()
        again = import_decisions(st, fixture).as_dict()
        assert again["recorded"] == 0 and again["duplicates"] == 6 and st.status_counts() == before


def test_review_cli_round_trip(review_run, tmp_path):
    from typer.testing import CliRunner

    from soaes.cli import app

    store = str(review_run / "review.sqlite")
    r = CliRunner().invoke(app, ["review", "export", str(tmp_path / "ls"), "--store", store, "--format", "labelstudio"])
    assert r.exit_code == 0 and "pending items as labelstudio" in r.output
    r = CliRunner().invoke(app, ["review", "import", str(SYNTH_FIXTURES / "labelstudio_export.json"), "--store", store])
    assert r.exit_code == 0 and "recorded 6" in r.output and "CONFLICTS (1)" in r.output
    r = CliRunner().invoke(app, ["review", "status", "--store", store, "--conflicts"])
    assert r.exit_code == 0 and "approved: 3" in r.output and "conflict: 1" in r.output
    assert "labelstudio:4 via labelstudio: reject" in r.output
    r = CliRunner().invoke(app, ["review", "status", "--store", store, "--json"])
    assert json.loads(r.output)["counts"]["rejected"] == 1
