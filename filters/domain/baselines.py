"""Baselines every domain-model figure is reported beside: a keyword regex (≥ 1 or ≥ 2 hits).

The keyword list is what a curator would grep for (finance, law, business, politics); it is the
list benchmarks/domain_filter.py has always used, kept in one place so every benchmark compares
against the same baseline.
"""
from __future__ import annotations

import re

KEYWORDS = (
    "法律 法规 条例 法院 判决 诉讼 被告 原告 合同 违约 侵权 犯罪 刑法 民法 公司法 律师 仲裁 条款 第.条 司法 "
    "金融 银行 股票 证券 基金 债券 投资 利率 贷款 保险 财务 会计 税 资产 负债 收益 利润 市场 汇率 通货膨胀 "
    "企业 公司 股东 董事 经营 管理 营销 商业 贸易 国有 国资 "
    "政府 政策 国务院 政治 党 人大 行政 监管 改革 选举"
).split()

_PAT = re.compile("|".join(KEYWORDS))


def keyword_hits(text: str, window: int = 512) -> int:
    return len(_PAT.findall(text[:window]))


def keyword_classifier(min_hits: int = 2, window: int = 512):
    def classify(texts: list[str]) -> list[bool]:
        return [len(_PAT.findall(t[:window])) >= min_hits for t in texts]

    return classify
