import pytest

from curation.pii import luhn_ok, redact, valid_id_card, valid_uscc


def _id_with_check(first17: str) -> str:
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * k for d, k in zip(first17, w)) % 11]


VALID_ID = _id_with_check("11010519491231002")  # GB 11643 example number: 11010519491231002X
VALID_ID_DIGIT = _id_with_check("44030419850612301")


def test_id_checksum_valid_and_invalid():
    assert VALID_ID == "11010519491231002X"
    assert valid_id_card(VALID_ID) and valid_id_card(VALID_ID_DIGIT)
    wrong = VALID_ID[:-1] + ("1" if VALID_ID[-1] != "1" else "2")
    assert not valid_id_card(wrong)
    assert not valid_id_card("110105194913310025")  # month 13


def test_valid_id_redacted_invalid_id_kept():
    wrong = VALID_ID_DIGIT[:-1] + str((int(VALID_ID_DIGIT[-1]) + 1) % 10) if VALID_ID_DIGIT[-1] != "X" else VALID_ID_DIGIT[:-1] + "0"
    text, counts = redact(f"张三，身份证号{VALID_ID}；李四，身份证号{wrong}。")
    assert "<ID_CARD>" in text and VALID_ID not in text
    assert wrong in text
    assert counts == {"id_card": 1}


def test_phones_email_card_ip_redacted():
    card = "6222020200112233440"
    while not luhn_ok(card):
        card = str(int(card) + 1)
    text, counts = redact(
        f"联系人手机13812345678，或 +86 139-1234-5678，座机(010)62345678转123，传真0571-87654321，"
        f"邮箱zhang.san@example.com.cn，银行卡号{card}，服务器IP 192.168.10.25。")
    assert counts == {"mobile": 2, "landline": 2, "email": 1, "bank_card": 1, "ip": 1}
    for raw in ("13812345678", "139-1234-5678", "62345678", "87654321", "zhang.san@", card, "192.168.10.25"):
        assert raw not in text
    assert text.count("<PHONE>") == 4 and "<EMAIL>" in text and "<BANK_CARD>" in text and "<IP_ADDRESS>" in text


def test_luhn_invalid_card_kept():
    card = "6222020200112233440"
    while luhn_ok(card):
        card = str(int(card) + 1)
    text, counts = redact(f"卡号{card}")
    assert card in text and "bank_card" not in counts


@pytest.mark.parametrize("text", [
    "根据《公司法》第一百四十二条、第12条第二款和第3.2.1条的规定",
    "本办法自2023-01-01起施行，2019年2月15日发布，2024/12/31截止",
    "注册资本13800000000元，营业收入1,234,567.89万元，净利润￥13912345678，持股18600000000股",
    "统一社会信用代码91350100M000100Y43，另一企业代码911100001000013211",
    "国发〔2019〕5号、国办函〔2004〕57号，索引号000014349/2019-00007",
    "客服热线400-810-8888，第1.4.1.2条 智能船舶，版本2.0.1.3",
])
def test_not_personal_data_is_not_redacted(text):
    out, counts = redact(text)
    assert out == text, counts
    assert counts == {}


def test_uscc_checksum():
    assert valid_uscc("91350100M000100Y43")
    assert not valid_uscc("91350100M000100Y44")


def test_redactor_step_writes_pii_metadata():
    from datatrove.data import Document

    from curation.pii import ZhPIIRedactor

    step = ZhPIIRedactor()
    doc = list(step.run(iter([Document(text="请拨打13812345678或发邮件a@b.cn", id="x")])))[0]
    assert doc.metadata["pii.mobile"] == 1 and doc.metadata["pii.email"] == 1
    assert doc.text == "请拨打<PHONE>或发邮件<EMAIL>"
