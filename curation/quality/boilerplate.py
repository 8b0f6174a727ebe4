"""Boilerplate line removal for Chinese web pages and documents (a datatrove formatter).

Short lines that are site chrome rather than content — 版权所有, 上一篇/下一篇, 扫一扫, 责任编辑,
分享到, 打印本页, 关闭窗口, ICP备案 … — are removed. Only lines up to ``max_line_chars`` long
are candidates, and statute lines (第…条/章/节) never are, so a sentence that merely mentions
版权 stays. The number of removed lines goes to ``metadata["quality.boilerplate_lines"]``; a
document left empty is dropped later by the quality filter (too_short), hence reaches rejects.
"""
from __future__ import annotations

import re

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

DEFAULT_PATTERNS = [
    r"版权所有", r"版权声明", r"copyright\s*(©|\(c\)|\d{4})", r"©\s*\d{4}", r"all rights reserved",
    r"^\s*(上一篇|下一篇|上一条|下一条|上一页|下一页|首页|尾页|返回|更多)\s*[:：]?", r"扫一扫", r"扫描二维码", r"二维码",
    r"责任编辑", r"编辑[:：]\s*\S{1,8}$", r"分享到", r"打印本页", r"关闭窗口", r"【\s*字[体号]", r"字号\s*[:：]?\s*[大中小]",
    r"[京沪粤浙苏]?ICP[备证]", r"公网安备", r"网站地图", r"联系我们", r"返回顶部", r"设为首页", r"加入收藏",
    r"浏览次数", r"阅读次数", r"点击量", r"相关(阅读|链接|新闻|文章|推荐)\s*[:：]?$", r"微信公众号", r"关注我们",
    r"^\s*(打印|收藏|关闭|纠错|分享)(\s*[|｜/]\s*(打印|收藏|关闭|纠错|分享))*\s*$", r"登录\s*[|｜/]\s*注册",
    r"^\s*[【\[]?\s*(我要)?(纠错|打印|关闭)\s*[】\]]?\s*$", r"主办单位\s*[:：]", r"技术支持\s*[:：]", r"网站标识码",
]
_STATUTE = re.compile(r"^\s*第[一二三四五六七八九十百千零〇\d]+[条章节编款]")


class BoilerplateLineRemover(PipelineStep):
    type = "✂️ - FORMAT"
    name = "🧹 boilerplate lines"

    def __init__(self, patterns: list[str] | None = None, max_line_chars: int = 60):
        super().__init__()
        self.patterns = list(patterns) if patterns is not None else list(DEFAULT_PATTERNS)
        self.max_line_chars = max_line_chars
        self._re = None

    def clean(self, text: str) -> tuple[str, int]:
        if self._re is None:
            self._re = re.compile("|".join(f"(?:{p})" for p in self.patterns), re.I)
        kept, removed = [], 0
        for line in text.split("\n"):
            s = line.strip()
            if s and len(s) <= self.max_line_chars and not _STATUTE.match(s) and self._re.search(s):
                removed += 1
                continue
            kept.append(line)
        return ("\n".join(kept).strip() if removed else text), removed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                doc.text, removed = self.clean(doc.text)
            doc.metadata["quality.boilerplate_lines"] = removed
            if removed:
                self.stat_update("lines_removed", value=removed)
            yield doc
