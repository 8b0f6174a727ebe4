import json
import time

import pytest

from benchmarks.extraction import char_f1
from corpora_manifests.rejects import read_rejects
from curation.readers.base import ExtractError
from curation.readers.encoding import decode_bytes
from curation.readers.files import DocumentReader, list_input_files, sniff
from curation.readers.html import extract_html
from curation.readers.pdf import extract_pdf
from curation.rejects import rejects_writer


def _read(paths, tmp_path, **opts):
    r = DocumentReader([str(p) for p in paths], opts or None, rejects_dir=str(tmp_path), source="test")
    docs = list(r.run(rank=0, world_size=1))
    rej = read_rejects(tmp_path / "rejects") if (tmp_path / "rejects").exists() else []
    return docs, rej


@pytest.mark.parametrize("name,how", [("govcn_gb18030.html", "gb18030:meta"), ("govcn_gb18030_nometa.html", "gb18030:detected")])
def test_gb18030_pages_decode(fixtures_dir, name, how):
    data = (fixtures_dir / "generated" / name).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    html, got = decode_bytes(data, html=True)
    assert got == how
    text = extract_html(data, name)[0].text
    expected = (fixtures_dir / "generated" / "govcn_gb18030.expected.txt").read_text(encoding="utf-8")
    assert char_f1(text, expected)[2] > 0.95
    assert "国务院办公厅" in text and "\ufffd" not in text


def test_big5_detected():
    text = "中華人民共和國國務院關於推進國有資產監督管理的意見，各省、自治區、直轄市人民政府。"
    assert decode_bytes(text.encode("big5"))[0] == text


def test_govcn_html_title_and_chrome(fixtures_dir):
    data = (fixtures_dir / "html" / "govcn" / "govcn_001.html").read_bytes()
    ex = extract_html(data, "govcn_001.html")[0]
    assert ex.metadata["extractor"].startswith("trafilatura") and ex.metadata.get("title")
    assert "扫一扫" not in ex.text  # site chrome is not main text


def test_layout_table_page_keeps_paragraphs(fixtures_dir):
    # gov.cn lays the article out in a table; flattened, it would be one Markdown row
    ex = extract_html((fixtures_dir / "html" / "govcn" / "govcn_001.html").read_bytes(), "govcn_001.html")[0]
    lines = ex.text.split("\n")
    assert ex.metadata.get("html.layout_table") is True
    assert "一、总体要求" in lines and len(lines) > 20
    assert not [ln for ln in lines if ln.startswith("|") and len(ln) > 400]


def test_html_fragment_without_body():
    frag = "<div><p>第一条 为了规范国有资产管理，制定本办法。</p><p>第二条 本办法适用于国家出资企业。</p></div>".encode()
    assert "第二条 本办法适用于国家出资企业。" in extract_html(frag, "f.html")[0].text


def test_generated_pdf_without_running_header_and_page_numbers(fixtures_dir):
    ex = extract_pdf((fixtures_dir / "generated" / "law_zh.pdf").read_bytes(), "law_zh.pdf")[0]
    expected = (fixtures_dir / "generated" / "law_zh.expected.txt").read_text(encoding="utf-8")
    lines = ex.text.split("\n")
    assert "法规汇编" not in ex.text  # the running header
    assert not [ln for ln in lines if ln.strip().strip("-– ").isdigit()]  # "- 3 -" page numbers
    assert ex.metadata["pdf.pages"] == 9 and ex.metadata["pdf.header_footer_lines"] >= 9
    assert char_f1(ex.text, expected)[2] > 0.99
    # lines broken by the layout are joined back into articles
    assert any(ln.startswith("第一条") and ln.endswith("制定本法。") for ln in lines)


def test_docx(fixtures_dir, tmp_path):
    docs, rej = _read([fixtures_dir / "generated" / "law_zh.docx"], tmp_path)
    assert len(docs) == 1 and not rej
    d = docs[0]
    assert d.metadata["extractor"] == "python-docx" and d.metadata["title"] == "企业国有资产监督管理暂行条例"
    assert "第一条 为建立适应社会主义市场经济需要的国有资产监督管理体制" in d.text


def test_broken_files_end_in_rejects_with_reasons(fixtures_dir, tmp_path):
    broken = fixtures_dir / "broken"
    docs, rej = _read([broken], tmp_path)
    by_file = {}
    for r in rej:
        by_file.setdefault(r["path"].rsplit("/", 1)[-1], []).append(r["reason"])
    assert by_file["empty.html"] == ["empty_file"] and by_file["empty.pdf"] == ["empty_file"]
    assert by_file["garbage.pdf"] == ["wrong_extension"]
    assert by_file["not_really.docx"] == ["wrong_extension"]
    assert by_file["garbage.txt"] == ["binary_file"]
    assert by_file["truncated.pdf"] == ["pdf_unreadable"]
    assert sorted(by_file["invalid_utf8.jsonl"]) == ["record_invalid_json", "record_invalid_utf8"]
    # the good records of the broken dump are kept; nothing listed vanished
    assert sorted(d.id.rsplit("#", 1)[-1] for d in docs) == ["ok-1", "ok-2"]
    listed = {p.rsplit("/", 1)[-1] for p in list_input_files([str(broken)])}
    assert listed == set(by_file) | {d.metadata["file_path"].rsplit("/", 1)[-1] for d in docs}
    assert all(r["stage"] == "read" and r.get("detail") for r in rej)


def test_wrong_extension_and_unsupported(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "report.pdf").write_text("<html><body>这其实是网页</body></html>", encoding="utf-8")
    (src / "notes.txt").write_bytes(b"%PDF-1.4\n%\xe2\xe3\n1 0 obj")
    (src / "image.png").write_bytes(b"\x89PNG\r\n")
    out = tmp_path / "out"
    docs, rej = _read([src], out)
    assert not docs
    assert {r["path"].rsplit("/", 1)[-1]: r["reason"] for r in rej} == {
        "report.pdf": "wrong_extension", "notes.txt": "wrong_extension", "image.png": "unsupported_format"}


def test_markdown_text_jsonl_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.md").write_text("# 国有资产管理办法\n\n第一条 为了规范管理，制定本办法。", encoding="utf-8")
    (src / "b.txt").write_bytes("第二条 本办法适用于国家出资企业。".encode("gb18030"))
    (src / "c.jsonl").write_text(json.dumps({"doc_id": "k1", "content": "第三条 内容。", "region": "浙江"},
                                            ensure_ascii=False) + "\n" + json.dumps({"doc_id": "k2"}) + "\n", encoding="utf-8")
    import gzip

    (src / "e.jsonl.gz").write_bytes(gzip.compress(json.dumps({"doc_id": "z1", "content": "第五条 压缩。"},
                                                              ensure_ascii=False).encode()))
    pq.write_table(pa.table({"id": ["p1"], "text": ["第四条 其他。"], "metadata": ['{"year": 2020}']}), src / "d.parquet")
    r = DocumentReader([str(src)], {"text_key": "content", "id_key": "doc_id"}, rejects_dir=str(tmp_path / "out"))
    docs = {d.id.rsplit("/", 1)[-1]: d for d in r.run()}
    assert docs["a.md"].metadata["title"] == "国有资产管理办法"
    assert docs["b.txt"].text == "第二条 本办法适用于国家出资企业。"
    assert docs["c.jsonl#k1"].metadata["region"] == "浙江"
    assert docs["e.jsonl.gz#z1"].text == "第五条 压缩。"
    rej = read_rejects(tmp_path / "out" / "rejects")
    # parquet has no 'content' column with these keys → rejected, k2 has no text → rejected
    assert sorted(x["reason"] for x in rej) == ["parquet_no_text_column", "record_no_text"]
    r2 = DocumentReader([str(src / "d.parquet")])
    (d,) = list(r2.run())
    assert d.id.endswith("#p1") and d.metadata["year"] == 2020


def test_globs_and_missing_inputs(fixtures_dir):
    files = list_input_files([str(fixtures_dir / "generated" / "*.html"), str(fixtures_dir / "nope")])
    assert [f.rsplit("/", 1)[-1] for f in files] == ["govcn_gb18030.html", "govcn_gb18030_nometa.html"]


def test_sniff():
    assert sniff(b"%PDF-1.7") == "pdf" and sniff(b"PK\x03\x04xx") == "zip"
    assert sniff(b"\xef\xbb\xbf<!DOCTYPE html>") == "html" and sniff("第一条".encode()) is None


def test_pdf_errors():
    with pytest.raises(ExtractError) as e:
        extract_pdf(b"%PDF-1.4 not really", "x.pdf")
    assert e.value.reason == "pdf_unreadable"


def test_rejects_writer_resumes_by_rewriting(tmp_path):
    from curation.rejects import reject_document

    for _ in range(2):  # a re-run rank rewrites its file instead of appending
        w = rejects_writer(tmp_path, "read")
        reject_document(w, 0, id="a", path="a.pdf", reason="empty_file")
        w.close()
    assert len(read_rejects(tmp_path / "rejects")) == 1


def _scan_pdf(tmp_path, ocr_text: str | None) -> bytes:
    """A page covered by an image, optionally with an invisible OCR text layer (what scanners make)."""
    from PIL import Image
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    img = tmp_path / "scan.png"
    Image.new("L", (200, 280), color=235).save(img)
    pdf = tmp_path / "scan.pdf"
    c = canvas.Canvas(str(pdf), pagesize=A4)
    c.drawImage(str(img), 0, 0, width=A4[0], height=A4[1])
    if ocr_text:
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
        t = c.beginText(60, 760)
        t.setFont("STSong-Light", 12)
        t.setTextRenderMode(3)  # invisible
        for line in ocr_text.split("\n"):
            t.textLine(line)
        c.drawText(t)
    c.showPage()
    c.save()
    return pdf.read_bytes()


def test_image_only_and_scanned_pages(tmp_path):
    from curation.readers.pdf import PdfOptions

    with pytest.raises(ExtractError) as e:
        extract_pdf(_scan_pdf(tmp_path, None), "scan.pdf")
    assert e.value.reason == "pdf_image_only"
    ocr = "第一条 为了加强企业国有资产监督管理，制定本条例。\n第二条 本条例适用于国有及国有控股企业。"
    data = _scan_pdf(tmp_path, ocr)
    with pytest.raises(ExtractError) as e:
        extract_pdf(data, "scan.pdf", PdfOptions(scanned_pages="reject"))
    assert e.value.reason == "pdf_scanned_text_layer"
    kept = extract_pdf(data, "scan.pdf")[0]  # a mapped, clean OCR layer is kept by default
    assert "第二条 本条例适用于国有及国有控股企业。" in kept.text and kept.metadata["pdf.ocr_pages"] == 1


def test_ruled_table_becomes_markdown_not_loose_cells(tmp_path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle
    from reportlab.lib.styles import ParagraphStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    style = ParagraphStyle("zh", fontName="STSong-Light", fontSize=11, leading=16)
    rows = [["职位", "人数", "工作职责"], ["工会主席", "1", "全面负责工会工作"], ["组织委员", "1", "负责工会组织工作"]]
    table = Table(rows, colWidths=[120, 60, 200])
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), "STSong-Light"), ("GRID", (0, 0), (-1, -1), 0.8, "black")]))
    pdf = tmp_path / "t.pdf"
    SimpleDocTemplate(str(pdf), pagesize=A4).build(
        [Paragraph("第十七条 工会委员由职工代表大会民主选举产生，具体成员及分工见下表。", style), table,
         Paragraph("第十八条 工会在公司党委的领导下独立自主地开展工作。", style)])
    from curation.readers.pdf import PdfOptions

    text = extract_pdf(pdf.read_bytes(), "t.pdf")[0].text
    assert "| 职位 | 人数 | 工作职责 |" in text and "| 组织委员 | 1 | 负责工会组织工作 |" in text
    assert text.count("负责工会组织工作") == 1  # cells are not also left as loose lines
    assert text.index("第十七条") < text.index("| 职位") < text.index("第十八条")
    dropped = extract_pdf(pdf.read_bytes(), "t.pdf", PdfOptions(tables="drop"))[0].text
    assert "负责工会组织工作" not in dropped and "第十八条" in dropped


def test_pdf_page_limit(fixtures_dir):
    from curation.readers.pdf import PdfOptions

    ex = extract_pdf((fixtures_dir / "generated" / "law_zh.pdf").read_bytes(), "law_zh.pdf", PdfOptions(max_pages=2))[0]
    assert ex.metadata["pdf.truncated"] == "max_pages" and ex.metadata["pdf.pages_used"] == 2
    assert "第一条" in ex.text and "第九章" not in ex.text


def test_pdf_time_limit(fixtures_dir):
    from curation.readers.pdf import PdfOptions

    data = (fixtures_dir / "generated" / "law_zh.pdf").read_bytes()
    with pytest.raises(ExtractError) as e:
        extract_pdf(data, "law_zh.pdf", PdfOptions(time_limit_s=1e-9))
    assert e.value.reason == "pdf_timeout"


def test_hard_time_limit_rejects_the_file(tmp_path):
    # a real, large page: trafilatura needs far more than the 10 ms allowed
    src = tmp_path / "big.html"
    para = "<p>第一条 为了加强企业国有资产监督管理，发挥国有经济在国民经济中的主导作用，制定本条例。</p>"
    src.write_text("<html><body>" + para * 4000 + "</body></html>", encoding="utf-8")
    r = DocumentReader([str(src)], {"time_limit_s": 0.01}, rejects_dir=str(tmp_path))
    t0 = time.monotonic()
    assert list(r.run()) == []
    assert time.monotonic() - t0 < 5
    (rej,) = read_rejects(tmp_path / "rejects")
    assert rej["reason"] == "extract_timeout"


def test_fsspec_urls(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/soaes_test/a.md", "# 标题\n\n第一条 内容。".encode())
    fs.pipe("/soaes_test/sub/b.txt", "第二条 内容。".encode("gb18030"))
    files = list_input_files(["memory://soaes_test"])
    assert [f.split("soaes_test")[-1] for f in files] == ["/a.md", "/sub/b.txt"]
    assert all(f.startswith("memory://") for f in files)
    docs = list(DocumentReader(["memory://soaes_test"]).run())
    assert [d.text for d in docs] == ["# 标题\n\n第一条 内容。", "第二条 内容。"]
    fs.rm("/soaes_test", recursive=True)


def test_dumps_are_streamed_with_a_per_record_limit(tmp_path):
    """JSONL (plain, .gz, .zst), parquet and directories are read record by record: a file far larger
    than the per-document limit is read in full, and only the one over-long record is refused."""
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    limit = 4096
    rec = lambda i, n=200: json.dumps({"id": f"r{i}", "text": "第一条 国有资产。" * (n // 9 + 1)},  # noqa: E731
                                      ensure_ascii=False) + "\n"
    lines = [rec(i) for i in range(300)]  # ~200 KB: 50x the limit
    lines[7] = rec(7, 3 * limit)  # one record over the limit, in the middle
    body = "".join(lines).encode("utf-8")
    assert len(body) > 40 * limit
    (src / "plain.jsonl").write_bytes(body)
    (src / "sub" / "gz.jsonl.gz").write_bytes(gzip.compress(body))
    (src / "sub" / "zst.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(body))
    (src / "no_newline.jsonl").write_bytes(body.rstrip(b"\n"))
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(300)], "text": ["第二条 股权。" * 30] * 300}),
                   src / "d.parquet", row_group_size=50)
    r = DocumentReader([str(src)], {"max_document_bytes": limit}, rejects_dir=str(tmp_path / "out"))
    docs = list(r.run())
    per_file: dict[str, int] = {}
    for d in docs:
        per_file[d.metadata["file_path"].rsplit("/", 1)[-1]] = per_file.get(d.metadata["file_path"].rsplit("/", 1)[-1], 0) + 1
    assert per_file == {"plain.jsonl": 299, "gz.jsonl.gz": 299, "zst.jsonl.zst": 299, "no_newline.jsonl": 299,
                        "d.parquet": 300}
    rej = read_rejects(tmp_path / "out" / "rejects")
    assert sorted((x["reason"], x["id"].rsplit("/", 1)[-1]) for x in rej) == sorted(
        ("record_too_large", f"{f}#line8") for f in ("plain.jsonl", "gz.jsonl.gz", "zst.jsonl.zst", "no_newline.jsonl"))
    # the old per-file key still loads, as the per-document limit
    assert DocumentReader([str(src)], {"max_file_bytes": 123}).options.max_document_bytes == 123


def test_one_document_files_over_the_limit_are_rejected_not_read(tmp_path):
    (tmp_path / "big.txt").write_text("第一条 内容。" * 2000, encoding="utf-8")
    (tmp_path / "big.txt.gz").write_bytes(__import__("gzip").compress(("第二条。" * 5000).encode("utf-8")))
    r = DocumentReader([str(tmp_path)], {"max_document_bytes": 4096}, rejects_dir=str(tmp_path / "out"))
    assert list(r.run()) == []
    assert sorted(x["reason"] for x in read_rejects(tmp_path / "out" / "rejects")) == ["document_too_large"] * 2
