import json

import pytest
import tiktoken

from corpora_manifests.tokenizer import (
    QWEN2_PAT, _ranks_path, count_tokens, load_tokenizer, tokenizer_info,
)


def test_known_qwen25_ids(qwen_tokenizer):
    tok = qwen_tokenizer
    assert tok.encode("你好", add_special_tokens=False) == [108386]
    assert tok.encode("Hello world", add_special_tokens=False) == [9707, 1879]
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 151643
    assert tok.convert_tokens_to_ids("<|im_start|>") == 151644
    assert tok.convert_tokens_to_ids("<|im_end|>") == 151645
    assert len(tok) == 151665
    assert tok.eos_token_id == 151645 and tok.pad_token_id == 151643


def test_chat_template_rendering(qwen_tokenizer):
    msgs = [{"role": "user", "content": "什么是国有资产？"}, {"role": "assistant", "content": "国家出资形成的权益。"}]
    text = qwen_tokenizer.apply_chat_template(msgs, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n什么是国有资产？<|im_end|>\n<|im_start|>assistant\n国家出资形成的权益。<|im_end|>\n"
    )
    sys_msgs = [{"role": "system", "content": "你是法律助手。"}, msgs[0]]
    gen = qwen_tokenizer.apply_chat_template(sys_msgs, tokenize=False, add_generation_prompt=True)
    assert gen == "<|im_start|>system\n你是法律助手。<|im_end|>\n<|im_start|>user\n什么是国有资产？<|im_end|>\n<|im_start|>assistant\n"
    ids = qwen_tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(ids["input_ids"], ids["assistant_masks"]) if m]
    assert qwen_tokenizer.decode(masked) == "国家出资形成的权益。<|im_end|>"


def test_matches_tiktoken_on_real_text(qwen_tokenizer, fixtures_dir):
    """The HF tokenizer built from the ranks must tokenise exactly as tiktoken does on real text."""
    import base64

    ranks = {base64.b64decode(t): int(r) for t, r in (l.split() for l in _ranks_path().read_text().splitlines() if l)}
    enc = tiktoken.Encoding("qwen", pat_str=QWEN2_PAT, mergeable_ranks=ranks, special_tokens={})
    texts = []
    for name in ["laws/laws_sample.jsonl", "instructions/sharegpt_zh_1k.jsonl"]:
        with open(fixtures_dir / name, encoding="utf-8") as f:
            for line in list(f)[:40]:
                r = json.loads(line)
                texts.append(r.get("text") or json.dumps(r, ensure_ascii=False))
    texts += ["  多个  空格\n\n\t以及 English words, numbers 12345 和符号！？", "ｆｕｌｌ－ｗｉｄｔｈ　全角"]
    for t in texts:
        assert qwen_tokenizer.encode(t, add_special_tokens=False) == enc.encode_ordinary(t)
    assert count_tokens(qwen_tokenizer, texts[:3]) == [len(enc.encode_ordinary(t)) for t in texts[:3]]


def test_fingerprint_stable_and_model_dir(tmp_path, qwen_tokenizer):
    info = tokenizer_info(qwen_tokenizer)
    assert info.vocab_size == 151665 and len(info.fingerprint) == 64
    qwen_tokenizer.save_pretrained(tmp_path)
    again = load_tokenizer(str(tmp_path))
    assert again.encode("你好", add_special_tokens=False) == [108386]
    assert tokenizer_info(again).vocab_size == info.vocab_size


def test_unknown_tokenizer_fails_clearly():
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_tokenizer("/no/such/model-dir")
