"""The SFT loss mask covers exactly the assistant tokens, and equals transformers' generation mask."""
import numpy as np

from corpora_manifests.shards import iter_rows
from training.chat_template import BadSample, ChatEncoder, normalise_messages, render_chatml

import pytest

MULTI_TURN = [
    {"role": "system", "content": "你是国资监管领域的专家。"},
    {"role": "user", "content": "什么是企业国有资产？"},
    {"role": "assistant", "content": "企业国有资产是指国家对企业各种形式的出资所形成的权益。"},
    {"role": "user", "content": "由谁履行出资人职责？"},
    {"role": "assistant", "content": "\n\n国务院和地方人民政府依照法律、行政法规的规定，分别代表国家履行出资人职责。 "},
    {"role": "user", "content": "谢谢"},
    {"role": "assistant", "content": "不客气！"},
]


def test_mask_covers_exactly_the_assistant_replies(qwen_tokenizer):
    enc = ChatEncoder(qwen_tokenizer)
    assert enc.mode == "chatml"
    e = enc.encode([MULTI_TURN])[0]
    ids, mask = e.input_ids, e.loss_mask.astype(bool)
    # The masked tokens, read back, are each reply followed by <|im_end|>; nothing else.
    runs, cur = [], []
    for t, m in zip(ids.tolist(), mask.tolist()):
        if m:
            cur.append(t)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    replies = [m["content"] for m in MULTI_TURN if m["role"] == "assistant"]
    decoded = [qwen_tokenizer.decode(r) for r in runs]
    assert len(decoded) == len(replies)
    for got, reply in zip(decoded, replies):
        # A reply starting with newlines merges with the template's "\n" into one BPE token, which
        # belongs to the reply (transformers' rule too): at most that one template character extra.
        assert got.endswith(reply + "<|im_end|>") and got[: len(got) - len(reply) - 10] in ("", "\n")
    assert decoded[1].startswith("\n\n\n")  # the merged case is exercised
    # Exactly the tokens of the replies: the same count as tokenising the rendered replies.
    text, spans = render_chatml(MULTI_TURN, enc.default_system)
    assert int(mask.sum()) == sum(len(qwen_tokenizer(text[a:b], add_special_tokens=False)["input_ids"]) for a, b in spans)
    # No user/system token is masked in: every <|im_start|> and every user question is outside.
    im_start = qwen_tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert not mask[ids == im_start].any()


def test_equals_transformers_generation_mask_on_fixture_dialogues(qwen_tokenizer, train_fixtures):
    enc = ChatEncoder(qwen_tokenizer)
    convs = [MULTI_TURN]
    for row in iter_rows(train_fixtures / "sft_stage1"):
        try:
            convs.append(normalise_messages(row["messages"]))
        except BadSample:
            continue
    assert len(convs) >= 30 and sum(sum(m["role"] == "assistant" for m in c) > 1 for c in convs) >= 10
    for conv, ours in zip(convs, enc.encode(convs)):
        ref = qwen_tokenizer.apply_chat_template(conv, tokenize=True, return_dict=True,
                                                 return_assistant_tokens_mask=True)
        assert ours.input_ids.tolist() == list(ref["input_ids"])
        assert ours.loss_mask.tolist() == list(ref["assistant_masks"])
        assert ours.loss_mask.any()


@pytest.mark.parametrize("bad,reason", [
    ([], "no_messages"),
    ([{"role": "user", "content": "只有问题"}], "no_assistant_reply"),
    ([{"role": "user", "content": "q"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}], "system_not_first"),
    ([{"role": "tool", "content": "x"}, {"role": "assistant", "content": "a"}], "malformed_message"),
])
def test_untrainable_samples_raise_their_reason(bad, reason):
    with pytest.raises(BadSample, match=reason):
        normalise_messages(bad)
