"""Report plots render Chinese labels with a CJK font, not as missing-glyph boxes."""
from __future__ import annotations

import subprocess
import warnings

import pytest


def _zh_font_installed() -> bool:
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.strip())


@pytest.mark.skipif(not _zh_font_installed(), reason="no Chinese font installed (scripts/system_deps.sh adds one)")
def test_chinese_labels_find_their_glyphs(tmp_path):
    from corpora_manifests.report import bar, pyplot

    plt = pyplot()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = bar(plt, ["国有资产监督管理", "企业国有资产法"], [3.0, 5.0], "各阶段记录数", "记录")
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert png and not missing, missing[:3]
