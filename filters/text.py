"""Text views of an instruction sample shared by language ID, the domain classifier and dedup.

Language and domain are decided over the user and assistant turns (system prompts are boilerplate
that says nothing about the sample). Code blocks are removed first: code is English-looking in any
language and would make every programming answer "mixed".
"""
from __future__ import annotations

import re
import unicodedata

_FENCED = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.S)
_INLINE = re.compile(r"`[^`\n]{1,200}`")
_URL = re.compile(r"https?://\S+|www\.\S+")
# CJK Unified Ideographs (+ Ext A, compatibility): what "Chinese characters" means here.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")


def strip_code(text: str) -> str:
    """Drop fenced and inline code and URLs; keep the prose."""
    text = _FENCED.sub(" ", text)
    text = _INLINE.sub(" ", text)
    return _URL.sub(" ", text)


def dialogue_text(messages: list[dict], roles: tuple[str, ...] = ("user", "assistant"), code: bool = False) -> str:
    """The user and assistant turns joined by newlines (code removed unless ``code``)."""
    parts = [m["content"] for m in messages if m.get("role") in roles and m.get("content")]
    text = "\n".join(parts)
    return text if code else strip_code(text)


def first_user_turn(messages: list[dict]) -> str:
    for m in messages:
        if m.get("role") == "user":
            return m.get("content") or ""
    return ""


def script_counts(text: str) -> tuple[int, int]:
    """(CJK characters, Latin words)."""
    return len(_CJK.findall(text)), len(_LATIN_WORD.findall(text))


def zh_share(text: str, latin_word_weight: float = 1.5) -> float | None:
    """Share of Chinese in the prose: CJK characters against Latin words weighted as
    ``latin_word_weight`` characters each (an English word carries about as much as 1-2 Chinese
    characters). None when the text has neither script."""
    cjk, words = script_counts(text)
    total = cjk + latin_word_weight * words
    return None if total == 0 else cjk / total


_PUNCT_OR_SPACE = re.compile(r"[\s\W_]+", re.U)


def normalise_for_match(text: str) -> str:
    """NFKC, lower case, whitespace and punctuation removed: formatting cannot hide an overlap."""
    return _PUNCT_OR_SPACE.sub("", unicodedata.normalize("NFKC", text).lower())


def domain_text(messages: list[dict], min_user_chars: int = 24) -> str:
    """What the domain classifier reads: the user turns (code removed); the first answer is added
    only when the user said too little to show a topic (< ``min_user_chars`` characters), so a
    long answer never outweighs the question it answers."""
    user = strip_code("\n".join(m["content"] for m in messages if m.get("role") == "user" and m.get("content"))).strip()
    if len(user) >= min_user_chars:
        return user
    answer = next((m["content"] for m in messages if m.get("role") == "assistant" and m.get("content")), "")
    return f"{user}\n{strip_code(answer).strip()}" if answer else user
