from filters.categories import CategoryRule
from filters.config import CategoryConfig
from filters.decontam import NgramIndex, iter_eval_records
from filters.dedup import InstructionDeduplicator
from filters.readers import read_samples


def test_category_rule_on_infinity_fixture(fixtures_dir):
    cfg = CategoryConfig()
    rule = CategoryRule(cfg.keep, cfg.exclude, cfg.keep_min_score)
    samples = list(read_samples(fixtures_dir / "filters" / "infinity_instruct_sample.jsonl"))
    by = {}
    for s in samples:
        # classifier deliberately says "out" with p_in 0: only the categories may keep a sample
        d = rule.decide(s.categories, 0.0, False)
        by.setdefault(d.decided_by, []).append((s, d))
    keep = by["category_keep"]
    assert keep and all(d.keep for _, d in keep)
    # law + mathematics: keep beats exclude
    assert any("数学能力" in s.categories and "法律与安全知识" in s.categories for s, _ in keep)
    excl = by["category_exclude"]
    assert excl and all(not d.keep and d.reason == "category_excluded" for _, d in excl)
    assert {c for s, _ in excl for c in s.categories} & {"医学、药学与健康知识", "文学创作与艺术知识", "数学能力"}
    clf = by["classifier"]
    assert clf and all(d.reason == "domain_out" for _, d in clf)
    # the classifier decides for neutral labels
    assert all(rule.decide(s.categories, 0.99, True).keep for s, _ in clf)
    # keep_min_score makes a keep-category sample also need the classifier
    strict = CategoryRule(cfg.keep, cfg.exclude, keep_min_score=0.5)
    s0 = keep[0][0]
    assert not strict.decide(s0.categories, 0.1, False).keep
    assert strict.decide(s0.categories, 0.6, True).keep


def test_near_dedup_first_user_turn():
    dd = InstructionDeduplicator(threshold=0.8)
    base = ("某公司发行了一张债券，债券面值为20000元，年利率为6%，到期日为2年后。请计算债券的实际利率和名义利率之间的差异，"
            "并说明在通货膨胀率为3%的情况下，投资者持有该债券到期的实际收益是多少，以及应如何评价这项投资。")
    assert dd.check("a", base) is None
    assert dd.check("b", base.replace("，", ",") + " ") == "a"  # formatting only
    assert dd.check("c", base.replace("3%", "4%")) == "a"  # small edit
    assert dd.check("d", "请介绍《中华人民共和国企业国有资产法》中关于国家出资企业管理者选择与考核的规定。") is None


def test_decontamination_finds_lawbench_items(fixtures_dir):
    idx = NgramIndex(n=30, stride=4)
    assert idx.add_records(iter_eval_records(fixtures_dir / "eval" / "lawbench_sample.jsonl"), "lawbench") == 40
    rec = next(iter_eval_records(fixtures_dir / "eval" / "lawbench_sample.jsonl"))
    sample = "请回答：" + rec["question"] + "\n参考：" + rec["reference"][:80].replace("。", ". ")
    hit = idx.find(sample)
    assert hit and hit.eval_set == "lawbench" and hit.eval_id == rec["id"]
    assert idx.find("给出三个保持健康的秘诀。多吃水果和蔬菜，定期锻炼，保持充足睡眠。") is None
    # guarantee: any shared substring of ≥ n + stride - 1 normalised characters is found
    ref = "".join(ch for ch in rec["reference"] if ch.isalnum())
    for start in range(0, max(1, len(ref) - 34), 7):
        assert idx.find("无关前缀" + ref[start:start + 33] + "无关后缀"), start


def test_decontamination_against_a_stage2_eval_manifest(tmp_path):
    """An evaluation set given as a manifest directory (e.g. the stage-2 test split) is indexed."""
    from corpora_manifests.models import Manifest, Provenance
    from corpora_manifests.shards import SFT_SCHEMA, ShardWriter

    answer = "国家出资企业应当依法建立和完善法人治理结构，建立健全内部监督管理和风险控制制度。"
    with ShardWriter(tmp_path, SFT_SCHEMA, split="test") as w:
        w.write({"id": "q1", "messages": [{"role": "user", "content": "国家出资企业应当建立哪些制度？"},
                                          {"role": "assistant", "content": answer}],
                 "source": "synth", "n_tokens": 30, "metadata": {}})
    Manifest(name="eval", stage="eval", producer=Provenance(version="0", command="test"), shards=w.shards).write(tmp_path)
    idx = NgramIndex(n=30)
    assert idx.add_records(iter_eval_records(tmp_path), "stage2_test") == 1
    hit = idx.find("请回答：" + answer)
    assert hit and hit.eval_set == "stage2_test" and hit.eval_id == "q1"
