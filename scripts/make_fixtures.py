"""Build tests/fixtures from ../shared/data (copies of permissive data) and generate the fixtures
that cannot be copied (PDF, DOCX, GB18030 HTML, broken files).

Run from the repo root:  .venv/bin/python scripts/make_fixtures.py [--shared ../shared/data]
The output is committed, so tests and the demo never need ../shared. Deterministic (seeded).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
SOAE_KEYWORDS = ("国有资产", "公司法", "证券法", "商业银行", "保险法", "信托法", "企业所得税", "预算法", "审计法")


def read_jsonl(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.open(encoding="utf-8") if line.strip()]


def write_jsonl(p: Path, rows: list[dict]) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def pick_laws(shared: Path, rng: random.Random, n: int = 200) -> list[dict]:
    rows = read_jsonl(shared / "lawrefbook_laws/laws.jsonl")
    chosen: dict[str, dict] = {}
    for r in rows:  # the SOAE core: state-owned assets, company and securities law
        if any(k in r["title"] for k in SOAE_KEYWORDS) and r["n_chars"] <= 40000:
            chosen[r["id"]] = r
    groups = defaultdict(list)
    for r in rows:
        if r["n_versions_in_group"] > 1:
            groups[r["version_group"]].append(r)
    multi = [g for g in groups.values() if max(x["n_chars"] for x in g) <= 9000]
    rng.shuffle(multi)
    for g in multi[:8]:  # several dated versions of one law: real near-duplicates
        for r in g:
            chosen[r["id"]] = r
    rest = [r for r in rows if r["id"] not in chosen and 300 <= r["n_chars"] <= 6000]
    rng.shuffle(rest)
    for r in rest:
        if len(chosen) >= n:
            break
        chosen[r["id"]] = r
    return sorted(chosen.values(), key=lambda r: r["id"])


def copy_instructions(shared: Path, rng: random.Random) -> dict[str, int]:
    plan = {  # folder -> how many records (all Apache-2.0 / ODC-By, see LICENSES.md)
        "disc_fin_sft_samples": 120,
        "sharegpt_zh_1k": 120,
        "medical_sft_1k_ood": 80,
        "belle_seed_tasks": 60,
        "belle_eval_set": 60,
        "longwriter_prompts": 60,
    }
    counts = {}
    for folder, k in plan.items():
        rows = read_jsonl(shared / folder / "data.jsonl")
        rng.shuffle(rows)
        rows = sorted(rows[:k], key=lambda r: r["id"])
        write_jsonl(FIX / "instructions" / f"{folder}.jsonl", rows)
        counts[folder] = len(rows)
    return counts


def copy_eval(shared: Path, rng: random.Random) -> dict[str, int]:
    counts = {}
    lb = read_jsonl(shared / "lawbench/data.jsonl")
    by_task = defaultdict(list)
    for r in lb:
        by_task[r["task"]].append(r)
    sample = []
    for task in sorted(by_task):
        sample.extend(by_task[task][:2])
    write_jsonl(FIX / "eval" / "lawbench_sample.jsonl", sample)
    counts["lawbench"] = len(sample)
    dl = read_jsonl(shared / "disc_law_eval/data.jsonl")[:20]
    write_jsonl(FIX / "eval" / "disc_law_eval_sample.jsonl", dl)
    counts["disc_law_eval"] = len(dl)
    return counts


def page_html(title: str, meta_fragment: str, body_html: str, charset: str = "utf-8") -> str:
    # A full page around the real gov.cn fragments: head, site chrome, metadata table, article body.
    return (
        f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="{charset}">\n<title>{title}_政府信息公开专栏</title></head>\n'
        '<body><div class="header"><a href="/">首页</a> | <a href="/zhengce/">政策</a> | <a href="/hudong/">互动</a></div>\n'
        f'{meta_fragment}\n<div class="article"><h1>{title}</h1>\n<div class="pages_content" id="UCAP-CONTENT">{body_html}</div></div>\n'
        '<div class="footer">版权所有：中国政府网 | 网站标识码bm01000001 | 扫一扫在手机打开当前页</div></body></html>\n'
    )


def copy_govcn(shared: Path) -> int:
    rows = read_jsonl(shared / "govcn_policy_html/data.jsonl")[:20]
    out = FIX / "html" / "govcn"
    out.mkdir(parents=True, exist_ok=True)
    meta = []
    for i, r in enumerate(rows, 1):
        frag_path = shared / "govcn_policy_html/html" / f"govcn_{i:03d}.html"
        frag = frag_path.read_text(encoding="utf-8") if frag_path.exists() else ""
        body = r.get("content_html") or "".join(f"<p>{line}</p>" for line in r["text"].splitlines())
        (out / f"govcn_{i:03d}.html").write_text(page_html(r["title"], frag, body), encoding="utf-8")
        meta.append({k: r[k] for k in ("id", "url", "title", "release_office", "release_number", "text") if k in r})
    write_jsonl(FIX / "html" / "govcn_policy.jsonl", meta)
    return len(rows)


def generate_gb18030(shared: Path) -> None:
    r = read_jsonl(shared / "govcn_policy_html/data.jsonl")[20]
    body = r.get("content_html") or "".join(f"<p>{line}</p>" for line in r["text"].splitlines())
    html = page_html(r["title"], "", body, charset="gb2312")  # pages often declare gb2312 but use GB18030
    gen = FIX / "generated"
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "govcn_gb18030.html").write_bytes(html.encode("gb18030", errors="replace"))
    nodecl = html.replace('<meta charset="gb2312">', "")  # no declaration: detection from content
    (gen / "govcn_gb18030_nometa.html").write_bytes(nodecl.encode("gb18030", errors="replace"))
    (gen / "govcn_gb18030.expected.txt").write_text(r["text"], encoding="utf-8")


def law_paragraphs(law: dict) -> list[str]:
    text = law["text"].split("<!-- INFO END -->")[-1]
    return [ln.strip().lstrip("#").strip() for ln in text.splitlines() if ln.strip()]


def generate_pdf(law: dict) -> None:
    """A multi-page Chinese PDF with a running header and page numbers (CID font STSong-Light)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    path = FIX / "generated" / "law_zh.pdf"
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    width, height = A4
    title = law["title"]
    chars_per_line, line_h = 34, 20
    lines = []
    for para in law_paragraphs(law):
        while para:
            lines.append(para[:chars_per_line])
            para = para[chars_per_line:]
    page, y = 1, None

    def start_page():
        c.setFont("STSong-Light", 9)
        c.drawString(60, height - 40, f"{title}（法规汇编）")  # running header
        c.drawCentredString(width / 2, 30, f"- {page} -")  # page number
        c.setFont("STSong-Light", 12)
        return height - 80

    y = start_page()
    for ln in lines:
        if y < 60:
            c.showPage()
            page += 1
            y = start_page()
        c.drawString(60, y, ln)
        y -= line_h
    c.showPage()
    c.save()
    (FIX / "generated" / "law_zh.expected.txt").write_text("\n".join(law_paragraphs(law)), encoding="utf-8")


def generate_docx(law: dict) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = law["title"]
    d.add_heading(law["title"], level=1)
    for para in law_paragraphs(law)[1:]:
        d.add_paragraph(para)
    d.core_properties.created = __import__("datetime").datetime(2020, 1, 1)
    d.save(FIX / "generated" / "law_zh.docx")


def generate_broken() -> None:
    b = FIX / "broken"
    b.mkdir(parents=True, exist_ok=True)
    (b / "empty.html").write_bytes(b"")
    (b / "empty.pdf").write_bytes(b"")
    pdf = (FIX / "generated" / "law_zh.pdf").read_bytes()
    (b / "truncated.pdf").write_bytes(pdf[: len(pdf) // 3])
    rng = random.Random(7)
    (b / "garbage.txt").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    (b / "garbage.pdf").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    (b / "not_really.docx").write_bytes(b"this is not a zip file\n" * 20)
    good = {"id": "ok-1", "text": "第一条 为了规范国有资产管理，制定本办法。"}
    with (b / "invalid_utf8.jsonl").open("wb") as f:
        f.write((json.dumps(good, ensure_ascii=False) + "\n").encode())
        f.write(b'{"id": "bad-1", "text": "\xff\xfe\xfa broken"}\n')
        f.write(b'{"id": "bad-2", "text": \n')  # truncated JSON
        f.write((json.dumps({"id": "ok-2", "text": "第二条 本办法适用于国家出资企业。"}, ensure_ascii=False) + "\n").encode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    shared = Path(args.shared)
    rng = random.Random(20261122)
    laws = pick_laws(shared, rng)
    write_jsonl(FIX / "laws" / "laws_sample.jsonl", laws)
    counts = {"laws": len(laws), "govcn_html": copy_govcn(shared)}
    counts.update(copy_instructions(shared, rng))
    counts.update(copy_eval(shared, rng))
    generate_gb18030(shared)
    pdf_law = next(r for r in laws if r["title"] == "中华人民共和国企业国有资产法")
    generate_pdf(pdf_law)
    generate_docx(next(r for r in laws if r["title"] == "企业国有资产监督管理暂行条例"))
    generate_broken()
    for folder in ["lawrefbook_laws", "govcn_policy_html", "disc_fin_sft_samples", "sharegpt_zh_1k",
                   "medical_sft_1k_ood", "belle_seed_tasks", "belle_eval_set", "longwriter_prompts",
                   "lawbench", "disc_law_eval"]:
        dst = FIX / "upstream_licences" / folder
        dst.mkdir(parents=True, exist_ok=True)
        for f in (shared / folder).iterdir():
            if f.name.startswith(("LICENSE", "NOTICE")) or f.name == "meta.json":
                shutil.copy(f, dst / f.name)
    print(json.dumps(counts, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
