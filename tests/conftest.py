import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SHARED_DATA = Path(os.environ.get("SOAES_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; tests using it are large-data tests and skip, saying so, when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"large-data test: needs ../shared/data (not found at {SHARED_DATA})")
    return SHARED_DATA


@pytest.fixture(scope="session")
def qwen_tokenizer():
    from corpora_manifests.tokenizer import load_tokenizer

    return load_tokenizer("qwen2.5")


# Real Slurm / Ray clusters for the executor tests (session-scoped; skip, saying why, when unavailable).
from tests.cluster_fixtures import ray_cluster, slurm_cluster  # noqa: E402,F401
