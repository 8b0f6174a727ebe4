"""Which Chinese characters are 'common': built from the GB2312 and Big5 code tables (no data files).

Real Chinese prose, simplified or traditional, is almost entirely made of GB2312 (6,763 characters)
or Big5 level-1 (5,401 frequent traditional characters) characters. Mojibake (UTF-8 bytes decoded
as GBK, GBK decoded as Big5 …) and garbage OCR layers produce many characters outside both tables.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def common_hanzi() -> frozenset[str]:
    chars: set[str] = set()
    for hi in range(0xB0, 0xF8):  # GB2312 levels 1 and 2
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    for hi in range(0xA4, 0xC7):  # Big5 level 1 (frequent traditional characters)
        for lo in list(range(0x40, 0x7F)) + list(range(0xA1, 0xFF)):
            try:
                chars.add(bytes([hi, lo]).decode("big5"))
            except UnicodeDecodeError:
                pass
    return frozenset(c for c in chars if len(c) == 1 and "\u3400" <= c <= "\u9fff")
