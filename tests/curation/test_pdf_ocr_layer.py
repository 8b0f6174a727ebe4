"""Scanned pages whose OCR layer reads with doubled fragments are rejected, clean ones kept."""
import io

import pytest

from curation.readers.base import ExtractError
from curation.readers.pdf import doubled_ratio, extract_pdf

PROSE = ("结果出来要七天，我领着阳阳在这个城市的游乐园游玩，看着他坐在旋转木马上，向我挥手叫爸爸时，"
         "我的心也飞了起来。回到家，家里人急不可耐地问我结果，我把鉴定结果递给他们。母亲激动得眼泪直流。")
DOUBLED = ("结果结果出来出来要七天，我领着我领着阳阳在这个在这个城市的游乐园游玩，：“：“看着他坐在旋转"
           "木马上，向我向我挥手叫爸爸时，我的心我的心也飞了起来。已经已经回到家，我问他问他结果。")


def _scan_pdf(text: str) -> bytes:
    """One page covered by an image (the scan) with the text drawn invisibly over it (render mode 3),
    as OCR tools write it."""
    from PIL import Image
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    w, h = A4
    c.drawImage(ImageReader(Image.new("RGB", (200, 280), (235, 230, 220))), 0, 0, w, h)
    t = c.beginText(40, h - 60)
    t.setFont("STSong-Light", 11)
    t.setTextRenderMode(3)
    for i in range(0, len(text), 40):
        t.textLine(text[i:i + 40])
    c.drawText(t)
    c.showPage()
    c.save()
    return buf.getvalue()


def test_doubled_ratio_separates_doubled_from_clean_prose():
    assert doubled_ratio(PROSE * 3) < 0.02
    assert doubled_ratio(DOUBLED * 3) > 0.15


def test_clean_ocr_layer_is_kept_and_counted():
    docs = extract_pdf(_scan_pdf(PROSE * 4), "scan_clean.pdf")
    assert len(docs) == 1 and "旋转木马" in docs[0].text
    assert "结果结果" not in docs[0].text


def test_ocr_layer_with_doubled_fragments_is_rejected_with_reason():
    with pytest.raises(ExtractError) as e:
        extract_pdf(_scan_pdf(DOUBLED * 4), "scan_doubled.pdf")
    assert str(e.value).startswith("pdf_garbage_text_layer")
