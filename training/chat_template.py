"""SFT samples → Qwen ChatML token ids + a loss mask covering exactly the assistant tokens.

For the ChatML template (Qwen2.5's, ours from ``load_tokenizer("qwen2.5")`` or a model directory's
when it renders identically) the text is rendered here with the character span of every assistant
reply (content + ``<|im_end|>``) and tokenised in batches through the Rust backend with offsets; a
token is an assistant token when it overlaps a span — the same rule transformers applies to
``{% generation %}`` blocks (``return_assistant_tokens_mask``), which a test checks token for token.
Any other template goes through ``apply_chat_template`` and must carry generation markers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

ROLES = {"system", "user", "assistant"}
_PROBE = [
    {"role": "user", "content": "你好"},
    {"role": "assistant", "content": "您好！"},
    {"role": "user", "content": "国有资产是什么？"},
    {"role": "assistant", "content": "\n国家所有的资产。"},
]


class BadSample(ValueError):
    """A sample that cannot be trained on; the message is the reject reason."""


def normalise_messages(messages: Any) -> list[dict[str, str]]:
    """Validate a manifest row's messages; raise BadSample(reason) for an untrainable one."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise BadSample("no_messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or m.get("role") not in ROLES:
            raise BadSample("malformed_message")
        if m["role"] == "system" and i != 0:
            raise BadSample("system_not_first")
        out.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in out):
        raise BadSample("no_assistant_reply")
    return out


def render_chatml(messages: Sequence[dict[str, str]], default_system: str) -> tuple[str, list[tuple[int, int]]]:
    """Qwen2.5 ChatML text and the [start, end) character spans of the assistant replies."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0

    def add(s: str) -> None:
        nonlocal pos
        parts.append(s)
        pos += len(s)

    first_is_system = messages[0]["role"] == "system"
    add(f"<|im_start|>system\n{messages[0]['content'] if first_is_system else default_system}<|im_end|>\n")
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            add("<|im_start|>assistant\n")
            start = pos
            add(m["content"] + "<|im_end|>")
            spans.append((start, pos))
            add("\n")
        elif not (i == 0 and first_is_system):
            add(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n")
    return "".join(parts), spans


@dataclass
class Encoded:
    input_ids: np.ndarray  # int32
    loss_mask: np.ndarray  # uint8, 1 on assistant tokens


class ChatEncoder:
    """Encode conversations for a tokenizer; picks the fast ChatML path when it is exact."""

    def __init__(self, tokenizer):
        from corpora_manifests.tokenizer import QWEN25_DEFAULT_SYSTEM

        self.tokenizer = tokenizer
        self.default_system = QWEN25_DEFAULT_SYSTEM
        template = getattr(tokenizer, "chat_template", None)
        if not template:
            from corpora_manifests.errors import UserError

            raise UserError(f"tokenizer {getattr(tokenizer, 'name_or_path', '?')} has no chat template")
        rendered = tokenizer.apply_chat_template(_PROBE, tokenize=False)
        self.mode = "chatml" if rendered == render_chatml(_PROBE, self.default_system)[0] else "template"
        if self.mode == "template":
            probe = self._encode_template([_PROBE])[0]
            if not probe.loss_mask.any():
                from corpora_manifests.errors import UserError

                raise UserError("the tokenizer's chat template is not Qwen ChatML and has no {% generation %} "
                                "markers, so assistant tokens cannot be located for loss masking")

    def encode(self, conversations: Sequence[Sequence[dict[str, str]]]) -> list[Encoded]:
        if self.mode == "template":
            return self._encode_template(conversations)
        rendered = [render_chatml(c, self.default_system) for c in conversations]
        encs = self.tokenizer.backend_tokenizer.encode_batch([t for t, _ in rendered], add_special_tokens=False)
        out = []
        for (_, spans), enc in zip(rendered, encs):
            ids = np.asarray(enc.ids, dtype=np.int32)
            offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
            mask = np.zeros(len(ids), dtype=np.uint8)
            for a, b in spans:  # a token belongs to a reply when it overlaps the reply's span
                mask |= ((offsets[:, 0] < b) & (offsets[:, 1] > a)).astype(np.uint8)
            out.append(Encoded(ids, mask))
        return out

    def _encode_template(self, conversations) -> list[Encoded]:
        out = []
        for c in conversations:
            r = self.tokenizer.apply_chat_template(list(c), tokenize=True, return_dict=True,
                                                   return_assistant_tokens_mask=True)
            out.append(Encoded(np.asarray(r["input_ids"], dtype=np.int32),
                               np.asarray(r["assistant_masks"], dtype=np.uint8)))
        return out
