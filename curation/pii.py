"""PII redaction for Chinese text (a datatrove step): validated matches → typed placeholders, counted.

Redacted: resident ID numbers (18 digits, GB 11643 checksum and a real birth date), mobile numbers
(1[3-9]x, optional +86 and separators), landlines (area code 0xx/0xxx with a separator or
parentheses, optional extension), e-mail addresses, bank card numbers (16-19 digits, optionally
grouped by 4, Luhn-valid), IPv4 addresses (octets ≤ 255; see ``_looks_like_ip``) and IPv6.

Not personal data and never touched: unified social credit codes (GB 32100 checksum), article
numbers (第十二条, 第12条), dates (2023-01-01, 2023年1月1日), amounts (12,345.67元, 13800000000元),
document numbers (国发〔2019〕5号), 400/800 service numbers.
Counts go to ``metadata["pii.<type>"]`` and the step's stats.
"""
from __future__ import annotations

import datetime as _dt
import re

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import BaseModel, ConfigDict

PLACEHOLDERS = {
    "id_card": "<ID_CARD>",
    "bank_card": "<BANK_CARD>",
    "mobile": "<PHONE>",
    "landline": "<PHONE>",
    "email": "<EMAIL>",
    "ip": "<IP_ADDRESS>",
}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# a following unit makes a digit run an amount or a quantity, not a number to dial
_UNIT = r"(?!\s*(?:元|万|亿|美元|港元|人民币|股|吨|千克|公斤|米|平方|%|％|个|人|户|次|年|月|日|号|条|款|项))"
_NB = r"(?<![0-9A-Za-z])"  # no digit/letter right before
_NA = r"(?![0-9A-Za-z])"   # … or right after

_ID_RE = re.compile(_NB + r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]" + _NA)
_CARD_RE = re.compile(_NB + r"(?<![¥￥$])(?:\d{4}[ -]?){3}\d{4}(?:\d{1,3})?" + _NA + _UNIT)
_MOBILE_RE = re.compile(_NB + r"(?<![¥￥$.,])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _NA + _UNIT)
_LANDLINE_RE = re.compile(
    _NB + r"(?:\(0\d{2,3}\)|（0\d{2,3}）|0\d{2,3}[ -])[ ]?[2-9]\d{3}[ -]?\d{3,4}(?:\s*(?:转|ext\.?|-)\s*\d{1,5})?" + _NA)
# ASCII-only boundaries: \w would also match the hanzi that e-mail addresses sit between
_EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                       r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\s*[条款节章])")
_IPV6_RE = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f:])")
_LONG_NUMBER = re.compile(r"\d[\d ()（）+-]{5,}\d")  # every phone/ID/card has ≥ 7 digits in such a run
_DOTTED = re.compile(r"\d\.\d{1,3}\.\d")
_HEX_COLON = re.compile(r"[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_IP_CONTEXT = re.compile(r"(?i)(ip|地址|服务器|主机|host|访问)")


def valid_id_card(s: str) -> bool:
    """GB 11643-1999: 17 digits + ISO 7064 MOD 11-2 check character, and a real birth date."""
    if len(s) != 18 or not s[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(s[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != s[17].upper():
        return False
    try:
        birth = _dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    return _dt.date(1900, 1, 1) <= birth <= _dt.date.today()


def valid_uscc(s: str) -> bool:
    """GB 32100-2015 unified social credit code checksum (enterprise identifiers stay in the text)."""
    s = s.upper()
    if len(s) != 18 or any(c not in _USCC_CHARS for c in s):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(s[:17], _USCC_WEIGHTS))
    return _USCC_CHARS[(31 - total % 31) % 31] == s[17]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _looks_like_ip(text: str, m: re.Match) -> bool:
    octets = [int(x) for x in m.group().split(".")]
    if any(o > 255 for o in octets) or any(len(x) > 1 and x.startswith("0") for x in m.group().split(".")):
        return False
    # four-level section numbers (1.4.1.2) look like IPs: require an octet > 31 or an IP-ish word nearby
    if max(octets) > 31:
        return True
    return bool(_IP_CONTEXT.search(text[max(0, m.start() - 12):m.start()]))


class PIIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    types: list[str] = ["id_card", "bank_card", "mobile", "landline", "email", "ip"]
    placeholders: dict[str, str] = dict(PLACEHOLDERS)


def redact(text: str, types: list[str] | None = None, placeholders: dict[str, str] | None = None
           ) -> tuple[str, dict[str, int]]:
    """Redact ``text``; return (new text, {type: count}). Order matters: IDs before cards before phones."""
    types = set(types or PLACEHOLDERS)
    ph = placeholders or PLACEHOLDERS
    counts: dict[str, int] = {}

    def sub(kind: str, pattern: re.Pattern, ok) -> None:
        nonlocal text
        if kind not in types:
            return

        def repl(m: re.Match) -> str:
            if not ok(m):
                return m.group()
            counts[kind] = counts.get(kind, 0) + 1
            return ph.get(kind, PLACEHOLDERS[kind])

        text = pattern.sub(repl, text)

    # cheap guards: most text has no '@', no long digit run and no dotted quad, so most passes are skipped
    if "@" in text:
        sub("email", _EMAIL_RE, lambda m: True)
    if _LONG_NUMBER.search(text):
        sub("id_card", _ID_RE, lambda m: valid_id_card(m.group()) and not valid_uscc(m.group()))
        sub("bank_card", _CARD_RE,
            lambda m: (d := re.sub(r"\D", "", m.group())) and 16 <= len(d) <= 19 and luhn_ok(d)
            and not (len(d) == 18 and (valid_uscc(d) or valid_id_card(d))))
        sub("mobile", _MOBILE_RE, lambda m: True)
        sub("landline", _LANDLINE_RE, lambda m: True)
    if _DOTTED.search(text):
        sub("ip", _IPV4_RE, lambda m: _looks_like_ip(text, m))
    if "::" in text or _HEX_COLON.search(text):
        sub("ip", _IPV6_RE, lambda m: True)
    return text, counts


class ZhPIIRedactor(PipelineStep):
    """datatrove step: redact PII in ``doc.text``; counts in ``metadata["pii.<type>"]``."""

    type = "✂️ - FORMAT"
    name = "🔏 zh PII"

    def __init__(self, options: PIIOptions | dict | None = None):
        super().__init__()
        self.options = PIIOptions.model_validate(options or {})

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            if self.options.enabled:
                with self.track_time():
                    doc.text, counts = redact(doc.text, self.options.types, self.options.placeholders)
                for k, v in counts.items():
                    doc.metadata[f"pii.{k}"] = v
                    self.stat_update(f"pii_{k}", value=v)
            yield doc
