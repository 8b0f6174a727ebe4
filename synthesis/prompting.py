"""Prompt templates (versioned files) and the tolerant parser of model output.

A template is ``synthesis/prompts/<name>.md`` (or any path): an HTML comment header, then
``### system`` and ``### user`` sections with ``{{placeholders}}``. Its sha256 is recorded on every
item it produced, so a reworded prompt is visible in the data. Changing a template changes the
request hash too, so the cache never serves an answer to a different prompt.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from corpora_manifests.errors import UserError

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
_SECTION_RE = re.compile(r"^###\s*(system|user)\s*$", re.M)
_PLACEHOLDER_RE = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str
    sha256: str

    def render(self, **values: Any) -> list[dict[str, str]]:
        def fill(t: str) -> str:
            return _PLACEHOLDER_RE.sub(lambda m: str(values.get(m.group(1), "")), t)

        msgs = []
        if self.system.strip():
            msgs.append({"role": "system", "content": fill(self.system).strip()})
        msgs.append({"role": "user", "content": fill(self.user).strip()})
        return msgs


@lru_cache(maxsize=32)
def load_template(name_or_path: str) -> PromptTemplate:
    p = Path(name_or_path)
    if not p.suffix:
        p = PROMPTS_DIR / f"{name_or_path}.md"
    if not p.exists():
        raise UserError(f"prompt template not found: {p}")
    raw = p.read_text(encoding="utf-8")
    parts = _SECTION_RE.split(re.sub(r"<!--.*?-->", "", raw, flags=re.S))
    sections = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    if "user" not in sections:
        raise UserError(f"prompt template {p} has no '### user' section")
    return PromptTemplate(p.stem, sections.get("system", ""), sections["user"],
                          hashlib.sha256(raw.encode("utf-8")).hexdigest())


# ---- parsing ------------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_KEY_ALIASES = {
    "question": ("question", "问题", "q", "instruction", "任务", "指令"),
    "answer": ("answer", "答案", "a", "output", "回答", "报告", "response"),
}


class ParseError(ValueError):
    pass


def _normalise_pair(obj: Any) -> dict[str, Any] | None:
    if not isinstance(obj, dict):
        return None
    out = {}
    for key, aliases in _KEY_ALIASES.items():
        for a in aliases:
            if a in obj:
                out[key] = obj[a]
                break
    return out if out else None


def _objects_in(text: str) -> list[Any]:
    """Every complete top-level JSON value decodable from ``text`` (arrays and objects)."""
    dec = json.JSONDecoder()
    found: list[Any] = []
    i = 0
    while i < len(text):
        if text[i] in "[{":
            try:
                val, end = dec.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            found.append(val)
            i = end
        else:
            i += 1
    return found


def parse_pairs(content: str) -> tuple[list[dict[str, Any]], bool]:
    """Q&A pairs from model output: tolerant of code fences, chatter and a truncated tail.

    Returns (pairs, salvaged): ``salvaged`` is True when the output as a whole was not valid JSON
    and complete objects were recovered from it (e.g. a reply cut off at ``max_tokens``).
    Raises ParseError when nothing usable is found.
    """
    if not content or not content.strip():
        raise ParseError("empty output")
    candidates = [m.group(1) for m in _FENCE_RE.finditer(content)] or [content]
    for cand in candidates:
        try:
            val = json.loads(cand.strip())
        except json.JSONDecodeError:
            continue
        pairs = _pairs_from(val)
        if pairs:
            return pairs, False
    # Not one clean JSON value: recover every complete object, e.g. from "[{..},{..},{..." .
    body = content
    fence_open = content.find("```")
    if fence_open >= 0:
        body = content[fence_open + 3:].removeprefix("json").removeprefix("JSON")
    vals = _objects_in(body)
    pairs = [p for v in vals for p in _pairs_from(v)]
    if not pairs:
        # an array that never closed: look inside it for complete objects
        start = body.find("[")
        if start >= 0:
            pairs = [p for v in _objects_in(body[start + 1:]) for p in _pairs_from(v)]
    if not pairs:
        raise ParseError("no JSON question/answer objects found")
    return pairs, True


def _pairs_from(val: Any) -> list[dict[str, Any]]:
    if isinstance(val, dict):
        for k in ("pairs", "qa_pairs", "data", "items", "问答", "问答对"):
            if isinstance(val.get(k), list):
                val = val[k]
                break
        else:
            p = _normalise_pair(val)
            return [p] if p else []
    if isinstance(val, list):
        return [p for p in (_normalise_pair(v) for v in val) if p]
    return []
