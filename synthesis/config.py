"""The stage-2 run config: one YAML file validated by pydantic (paper values are the defaults).

Secrets never live here: the API key is read from the environment variable named by
``llm.api_key_env`` (default: ``ZHIPUAI_API_KEY``, then ``OPENAI_API_KEY``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from corpora_manifests.executor import ExecutorConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    """Where domain documents come from: a CPT manifest directory or a JSONL file."""

    kind: Literal["jsonl", "manifest"] = "jsonl"
    path: str
    text_field: str = "text"
    id_field: str = "id"
    title_field: str = "title"
    # Documents sharing this key (e.g. dated versions of one law) are one unit for the splits, so
    # near-identical versions never land on both sides of the train/test line.
    group_field: str | None = "version_group"
    limit: int | None = Field(default=None, ge=1, description="read at most this many documents")
    name: str = "domain_documents"
    licence: str | None = None


class ChunkConfig(_Strict):
    max_tokens: int = Field(default=1024, ge=32)
    min_chars: int = Field(default=40, ge=1)
    tokenizer: str = "qwen2.5"
    max_chunks: int | None = Field(
        default=None, ge=1,
        description="generate from at most this many chunks: a deterministic sample (lowest sha256 of the chunk "
                    "id), the same in every run; a larger cap keeps every chunk a smaller one chose")
    # the shared schema (corpora_manifests.executor); local with one task = chunk in-process
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig,
                                     description="where chunking runs: local | slurm | ray (docs/executors.md)")


class LLMConfig(_Strict):
    base_url: str = "https://open.bigmodel.cn/api/paas/v4/"
    model: str = "glm-4"
    api_key_env: str | None = None  # None: ZHIPUAI_API_KEY, then OPENAI_API_KEY
    temperature: float = Field(default=0.7, ge=0, le=2)
    top_p: float = Field(default=0.7, gt=0, le=1)
    max_tokens: int = Field(default=2048, ge=1)
    max_concurrency: int = Field(default=8, ge=1)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=6, ge=0)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    preflight_timeout_s: float = Field(default=10.0, gt=0)
    cache_path: str | None = None  # default: <output_dir>/cache/llm_cache.sqlite


class PromptConfig(_Strict):
    qa_template: str = "qa_v1"
    report_template: str = "report_v1"
    pairs_per_chunk: int = Field(default=5, ge=1, le=20)
    # Paper: ~1 k report tasks in ~33 k samples; a deterministic share of chunks gets a report prompt.
    report_fraction: float = Field(default=0.03, ge=0, le=1)


class ValidationConfig(_Strict):
    min_question_chars: int = Field(default=6, ge=1)
    min_answer_chars: int = Field(default=4, ge=1)
    ngram: int = Field(default=3, ge=1, le=8)
    min_grounding: float = Field(default=0.3, ge=0, le=1)
    dedup_threshold: float = Field(default=0.8, gt=0, le=1)
    dedup_num_perm: int = Field(default=128, ge=16)
    dedup_ngram: int = Field(default=5, ge=1)


class ReviewConfig(_Strict):
    # Paper: humans validate generated pairs, so only approved items flow on. `required: false`
    # auto-approves (annotator "auto") — for the offline demo and for trusted rule output.
    required: bool = True
    auto_approve_origins: list[Literal["rules", "synthetic"]] = Field(default_factory=list)
    store_path: str | None = None  # default: <output_dir>/review.sqlite


class ExpertFile(_Strict):
    path: str
    format: Literal["jsonl", "csv", "auto"] = "auto"


class SplitConfig(_Strict):
    train: float = Field(default=0.8, ge=0, le=1)
    dev: float = Field(default=0.1, ge=0, le=1)
    test: float = Field(default=0.1, ge=0, le=1)
    seed: int = 42

    @model_validator(mode="after")
    def _sums_to_one(self) -> "SplitConfig":
        if abs(self.train + self.dev + self.test - 1.0) > 1e-6:
            raise ValueError("split fractions train + dev + test must sum to 1")
        return self


class OutputConfig(_Strict):
    shard_target_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    system_prompt: str | None = None


class SynthConfig(_Strict):
    name: str = "soaes_sft_stage2"
    output_dir: str
    generator: Literal["llm", "rules"] = "llm"
    source: SourceConfig
    chunking: ChunkConfig = Field(default_factory=ChunkConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    prompts: PromptConfig = Field(default_factory=PromptConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    expert: list[ExpertFile] = Field(default_factory=list)
    split: SplitConfig = Field(default_factory=SplitConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    def resolve(self, base: Path) -> "SynthConfig":
        """Relative paths are relative to the config file's directory's repo root (``base``)."""
        def r(p: str | None) -> str | None:
            if p is None:
                return None
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else (base / q))

        c = self.model_copy(deep=True)
        c.output_dir = r(c.output_dir)
        c.source.path = r(c.source.path)
        c.llm.cache_path = r(c.llm.cache_path)
        c.review.store_path = r(c.review.store_path)
        for e in c.expert:
            e.path = r(e.path)
        return c

    @property
    def store_path(self) -> Path:
        return Path(self.review.store_path or Path(self.output_dir) / "review.sqlite")

    @property
    def cache_path(self) -> Path:
        return Path(self.llm.cache_path or Path(self.output_dir) / "cache" / "llm_cache.sqlite")
