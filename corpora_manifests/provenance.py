"""Build the `producer` block of a manifest: tool version, git commit, command, config + sha256."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .models import Provenance
from .runs import config_hash, redact_credentials



def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def redact_secrets(obj: Any) -> Any:
    """Secrets never reach manifests: credentials only (see ``runs.redact_credentials``)."""
    return redact_credentials(obj)


def config_sha256(config: dict[str, Any] | None, raw_text: str | None = None) -> str | None:
    """sha256 of the effective config (before redaction); the YAML text only when no config is given."""
    if config is not None:
        return config_hash(config)
    if raw_text is not None:
        return hashlib.sha256(raw_text.encode("utf-8")).hexdigest()
    return None


def make_provenance(config: dict[str, Any] | None = None, config_text: str | None = None,
                    command: str | None = None, usage: dict[str, Any] | None = None,
                    hashed: dict[str, Any] | None = None) -> Provenance:
    """``config`` is echoed (credentials redacted); ``hashed`` (default: ``config``) is the effective
    config whose sha256 the finished-run check compares."""
    from soaes import __version__

    return Provenance(
        version=__version__,
        git_commit=_git_commit(),
        command=command or " ".join(["soaes", *sys.argv[1:]]),
        config=redact_secrets(config) if config is not None else None,
        config_sha256=config_sha256(hashed if hashed is not None else config, config_text),
        usage=usage or {},
    )
