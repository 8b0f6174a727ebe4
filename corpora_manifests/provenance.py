"""Build the `producer` block of a manifest: tool version, git commit, command, config + sha256."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .models import Provenance

_SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password")


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
    """Secrets never reach manifests: drop values whose key looks like a credential."""
    if isinstance(obj, dict):
        return {
            k: ("<redacted>" if any(m in str(k).lower() for m in _SECRET_MARKERS) and v else redact_secrets(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact_secrets(v) for v in obj]
    return obj


def config_sha256(config: dict[str, Any] | None, raw_text: str | None = None) -> str | None:
    if raw_text is not None:
        return hashlib.sha256(raw_text.encode("utf-8")).hexdigest()
    if config is None:
        return None
    return hashlib.sha256(json.dumps(config, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def make_provenance(config: dict[str, Any] | None = None, config_text: str | None = None,
                    command: str | None = None, usage: dict[str, Any] | None = None) -> Provenance:
    from soaes import __version__

    return Provenance(
        version=__version__,
        git_commit=_git_commit(),
        command=command or " ".join(["soaes", *sys.argv[1:]]),
        config=redact_secrets(config) if config is not None else None,
        config_sha256=config_sha256(config, config_text),
        usage=usage or {},
    )
