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


_LAUNCHER_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "DS_ACCELERATOR")


@pytest.fixture(autouse=True)
def _no_launcher_env_leaks():
    """In-process training fills the launcher env (RANK, MASTER_PORT …) of this pytest process while
    its process group keeps MASTER_PORT bound; a later test's subprocess inheriting it would fail with
    EADDRINUSE. Each test starts and ends with the env it had before."""
    saved = {k: os.environ.get(k) for k in _LAUNCHER_ENV}
    yield
    # An in-process ZeRO-3 run leaves transformers' global DeepSpeed config set: a later
    # from_pretrained in this process would then partition (empty) the weights it loads.
    import sys

    if "transformers.integrations.deepspeed" in sys.modules:
        sys.modules["transformers.integrations.deepspeed"].unset_hf_deepspeed_config()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
