import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "configs" / "demo" / "synth_stage2.yaml"
SYNTH_FIXTURES = REPO / "tests" / "fixtures" / "synthesis"


@pytest.fixture
def fake_server():
    """Factory for local OpenAI-compatible servers; all are stopped after the test."""
    from synthesis.testserver import FakeChatServer

    servers = []

    def make(**kw):
        s = FakeChatServer(**kw).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """`soaes synth run configs/demo/synth_stage2.yaml` on the whole laws fixture (rules, offline)."""
    from typer.testing import CliRunner

    from soaes.cli import app

    out = tmp_path_factory.mktemp("synth_demo") / "out"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        res = CliRunner().invoke(app, ["synth", "run", str(DEMO_CONFIG), "-o", str(out)])
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out, res.output


@pytest.fixture(scope="session")
def review_store_template(tmp_path_factory):
    """A store with pending rule items from the first 12 fixture laws (the Label Studio fixture's ids)."""
    from synthesis.pipeline import run_synthesis

    out = tmp_path_factory.mktemp("synth_review") / "out"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        run_synthesis(str(DEMO_CONFIG), [f"output_dir={out}", "source.limit=12", "review.required=true"],
                      progress=False)
    finally:
        os.chdir(cwd)
    return out


@pytest.fixture
def review_run(review_store_template, tmp_path):
    """A private copy of the pending-review run (tests mutate the store)."""
    dst = tmp_path / "run"
    shutil.copytree(review_store_template, dst)
    return dst
