"""Chinese text normalisation as a datatrove formatter.

What it does, in order (each switchable in ``NormalizeOptions``):
- HTML residue: entities unescaped, tags removed; Markdown residue: heading/quote markers,
  emphasis, links (text kept), images, rules, code fences removed;
- full-width ASCII letters, digits and symbols → half-width; Chinese punctuation (，。：；！？（）“”
  《》【】…) is kept full-width, as Chinese typesetting wants; "．" between digits becomes ".";
  Kangxi/CJK radicals and CJK compatibility ideographs (PDF fonts emit ⼀ ⽤ for 一 用) → NFKC;
- zero-width, control, soft-hyphen, BOM and private-use characters removed (PUA glyphs are what
  PDF symbol fonts leave behind);
- whitespace collapsed: runs of spaces → one space, no space between two CJK characters or a CJK
  character and CJK punctuation (spaces are never inserted), at most one blank line in a row;
- optional Traditional → Simplified (OpenCC t2s).
"""
from __future__ import annotations

import html as _html
import re
import unicodedata

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import BaseModel, ConfigDict

CJK_CLASS = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
CJK_PUNCT = "，。、：；！？（）“”‘’《》〈〉【】「」『』〔〕…—～·￥％"
_CJKP = CJK_CLASS + re.escape(CJK_PUNCT)

# full-width ASCII (U+FF01..U+FF5E) → ASCII, except what Chinese text writes full-width
_KEEP_FULLWIDTH = set("，：；！？（）％～")
_FW_TABLE = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F) if chr(cp) not in _KEEP_FULLWIDTH and cp != 0xFF0E}
_FW_TABLE[0x3000] = 0x20  # ideographic space
_FW_TABLE.update({cp: None for cp in (0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0x2061, 0x2062, 0x2063,
                                      0x2064, 0xFEFF, 0x00AD, 0xFFFC)})
_FW_ANY = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_FW_TABLE)) + "]")
_ZW_ANY = re.compile("[" + "".join(re.escape(chr(c)) for c, v in sorted(_FW_TABLE.items()) if v is None) + "]")


def _fw_repl(m: re.Match) -> str:
    v = _FW_TABLE[ord(m.group())]
    return "" if v is None else chr(v)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff]")
_RADICALS = re.compile(r"[\u2e80-\u2eff\u2f00-\u2fdf\uf900-\ufaff]")
_FW_DOT = re.compile(r"(?<=\d)．(?=\d)")

_TAG = re.compile(r"</?(?:[a-zA-Z][a-zA-Z0-9]*)(?:\s[^<>]*)?/?>")
_BAD_ENTITY = re.compile(r"&[A-Za-z]{1,8};")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_MD_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.M)
_MD_QUOTE = re.compile(r"^[ \t]{0,3}>[ \t]?", re.M)
_MD_RULE = re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.M)
_MD_FENCE = re.compile(r"^[ \t]*(?:```|~~~).*$", re.M)
_MD_EMPH = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_MD_EMPH1 = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_CJK_SPACE = re.compile(rf"(?<=[{_CJKP}]) (?=[{_CJKP}])")
_BLANKS = re.compile(r"\n{3,}")


class NormalizeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strip_markup: bool = True
    fullwidth_ascii: bool = True
    remove_control: bool = True
    collapse_whitespace: bool = True
    traditional_to_simplified: bool = False


def strip_markup(text: str) -> str:
    # each pattern is guarded by a substring test: clean text skips the regex passes entirely
    if "<" in text:
        text = _COMMENT.sub("", text)
        text = _TAG.sub("", text)
    if "&" in text:
        text = _BAD_ENTITY.sub(" ", _html.unescape(text))  # "&sp;" and other non-entities left by CMSs
    if "```" in text or "~~~" in text:
        text = _MD_FENCE.sub("", text)
    if "](" in text:
        text = _MD_IMAGE.sub("", text)
        text = _MD_LINK.sub(r"\1", text)
    if "#" in text:
        text = _MD_HEADING.sub("", text)
    if ">" in text:
        text = _MD_QUOTE.sub("", text)
    if "--" in text or "**" in text or "__" in text or "* *" in text:
        text = _MD_RULE.sub("", text)
    if "**" in text or "__" in text:
        text = _MD_EMPH.sub(r"\2", text)
    if "*" in text:
        text = _MD_EMPH1.sub(r"\1", text)
    return text


def fullwidth_to_halfwidth(text: str) -> str:
    if "．" in text:
        text = _FW_DOT.sub(".", text)
    # str.translate looks every character up in a dict; substituting only the (rare) matches is ~10x faster
    text = _FW_ANY.sub(_fw_repl, text)
    if _RADICALS.search(text):
        text = _RADICALS.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    return text


def collapse_whitespace(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = _CJK_SPACE.sub("", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANKS.sub("\n\n", text)
    return text.strip()


class ZhNormalizer(PipelineStep):
    """datatrove formatter: Chinese normalisation (see module doc). Counts changed documents."""

    type = "✂️ - FORMAT"
    name = "🀄 zh normalise"

    def __init__(self, options: NormalizeOptions | dict | None = None):
        super().__init__()
        self.options = NormalizeOptions.model_validate(options or {})
        self._t2s = None

    def format(self, text: str) -> str:
        o = self.options
        if o.strip_markup:
            text = strip_markup(text)
        if o.fullwidth_ascii:
            text = fullwidth_to_halfwidth(text)
        else:
            text = _ZW_ANY.sub("", text)
        if o.remove_control:
            text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
        if o.traditional_to_simplified:
            if self._t2s is None:
                import opencc

                self._t2s = opencc.OpenCC("t2s")
            text = self._t2s.convert(text)
        if o.collapse_whitespace:
            text = collapse_whitespace(text)
        return text

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                new = self.format(doc.text)
            if new != doc.text:
                self.stat_update("changed")
                doc.text = new
            yield doc
