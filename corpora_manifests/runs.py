"""The one finished-run policy every stage uses (curate, filters, synth, train, and stages to come).

A stage's *effective config* is the validated config after YAML + overrides, before redaction,
minus the keys that only say where things live (``ignore``). Its sha256 is recorded in the
output's provenance. Re-running:

* same effective config and outputs that check out → no-op, "up to date";
* another effective config → refused with the changed keys, unless ``force`` (then redone);
* outputs recorded but missing or failing their hashes → not finished: the stage resumes (or its
  caller refuses with one line).

"Finished" is decided by checking the outputs (manifest shards re-hashed, final weights present),
never by the presence of a marker file alone.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from .errors import UserError

log = logging.getLogger("soaes.runs")

# Credentials only. ``tokenizer``, ``max_tokens``, ``tokens_per_minute`` and counts are settings,
# not secrets, and must stay visible (and comparable) in manifests.
_CREDENTIAL_KEY = re.compile(
    r"(^|_)(api_?key|password|passwd|secret|secret_key|access_key|private_key|credentials?|"
    r"bearer|authorization|auth_token|access_token|refresh_token|hf_token|token)$")
_BEARER_VALUE = re.compile(r"^\s*bearer\s+\S+", re.IGNORECASE)
REDACTED = "<redacted>"


def is_credential_key(key: str) -> bool:
    k = str(key).lower().replace("-", "_")
    if k.endswith("_env"):  # the *name* of an environment variable holding a key, not the key
        return False
    return bool(_CREDENTIAL_KEY.search(k))


def redact_credentials(obj: Any) -> Any:
    """Hide credential values (API keys, passwords, bearer tokens); keep everything else."""
    if isinstance(obj, dict):
        return {k: (REDACTED if v and is_credential_key(k) else redact_credentials(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_credentials(v) for v in obj]
    if isinstance(obj, str) and _BEARER_VALUE.match(obj):
        return REDACTED
    return obj


def effective_config(config: dict[str, Any], ignore: Iterable[str] = ()) -> dict[str, Any]:
    """A deep copy of ``config`` without the dotted ``ignore`` keys (locations, worker counts)."""
    data = json.loads(json.dumps(config, default=str))
    for dotted in ignore:
        d: Any = data
        parts = dotted.split(".")
        for p in parts[:-1]:
            d = d.get(p) if isinstance(d, dict) else None
        if isinstance(d, dict):
            d.pop(parts[-1], None)
    return data


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of an (unredacted) effective config."""
    text = json.dumps(config, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (lists of another length compared
    whole, same-length lists item by item: ``stages.1.learning_rate``). Keys only in
    ``old`` are skipped: validated configs dump every field, so those are ignored location keys."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in new:
                continue  # recorded echoes hold location keys the effective config leaves out
            if k not in old:
                out.append(key)
            else:
                out += changed_keys(old[k], new[k], key)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        # same-length lists (curriculum stages, input specs): name the item and key that changed
        return [k for i, (o, n) in enumerate(zip(old, new)) for k in changed_keys(o, n, f"{prefix}.{i}" if prefix else str(i))]
    return [] if old == new else [prefix or "(config)"]


State = Literal["absent", "up_to_date", "changed", "incomplete"]


@dataclass
class RunCheck:
    """What a previous run in an output directory means for this config."""

    state: State
    out: Path
    changed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.state == "up_to_date":
            return f"up to date: {self.out} (same effective config, outputs verified)"
        if self.state == "changed":
            keys = ", ".join(self.changed[:12]) + (" …" if len(self.changed) > 12 else "")
            return f"{self.out} holds a finished run of another config (changed: {keys}); use --force to redo it"
        if self.state == "incomplete":
            return f"{self.out}: recorded outputs do not check out ({'; '.join(self.problems[:3])}); resuming"
        return f"{self.out}: no finished run"


def check_run(out: str | Path, config: dict[str, Any], recorded: dict[str, Any] | None,
              problems: list[str] | None = None) -> RunCheck:
    """Compare this effective ``config`` with a previous run's ``recorded`` provenance
    (``{"config": <redacted dict>, "config_sha256": ...}``) and the outputs' ``problems``."""
    out = Path(out)
    if recorded is None:
        return RunCheck("absent", out)
    if recorded.get("config_sha256") != config_hash(config):
        old = recorded.get("config") or {}
        # Keys the record does not hold are settings a newer version added (at their defaults), and
        # a credential changing does not change outputs: neither makes a finished run another run.
        keys = [k for k in changed_keys(old, redact_credentials(config)) if _in_record(old, k)]
        if keys or not old:
            return RunCheck("changed", out, changed=keys or ["(config not recorded)"])
    if problems:
        return RunCheck("incomplete", out, problems=list(problems))
    return RunCheck("up_to_date", out)


def _in_record(old: Any, dotted: str) -> bool:
    node = old
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def decide(check: RunCheck, force: bool = False, what: str = "stage") -> bool:
    """The policy: True = finished and up to date (the caller returns its outputs as they are);
    False = (re)run. A changed config without ``force`` raises a one-line UserError."""
    if check.state == "up_to_date" and not force:
        log.info("%s %s", what, check.message)
        return True
    if check.state == "changed" and not force:
        raise UserError(f"{what}: {check.message}")
    if check.state == "incomplete":
        log.warning("%s %s", what, check.message)
    return False


def manifest_run_check(out: str | Path, config: dict[str, Any], *, deep: bool = True,
                       manifest_dirs: Iterable[str | Path] | None = None) -> RunCheck:
    """``check_run`` for stages whose outputs are manifests: the first manifest's provenance is the
    record; every listed manifest must load and (``deep``) re-hash its shards."""
    from .models import MANIFEST_FILENAME, ManifestError, load_manifest
    from .shards import verify_manifest

    out = Path(out)
    dirs = [Path(d) for d in (manifest_dirs or [out])]
    if not (dirs[0] / MANIFEST_FILENAME).exists():
        return RunCheck("absent", out)
    try:
        first = load_manifest(dirs[0])
    except ManifestError as e:
        return RunCheck("incomplete", out, problems=[str(e).splitlines()[0]])
    recorded = {"config": first.producer.config, "config_sha256": first.producer.config_sha256}
    problems: list[str] = []
    for d in dirs:
        try:
            m = load_manifest(d)
        except ManifestError as e:
            problems.append(str(e).splitlines()[0])
            continue
        if deep:
            problems += [f"{d.name}: {p}" for p in verify_manifest(d, m)]
        else:
            for s in m.shards:
                p = d / s.path
                if not p.exists() or p.stat().st_size != s.bytes:
                    problems.append(f"{d.name}/{s.path}: missing or resized")
    return check_run(out, config, recorded, problems)


def reset_output(out: str | Path) -> None:
    """``--force``: empty a previous run's output directory (it held our manifest/run record)."""
    import shutil

    out = Path(out)
    if not out.is_dir():
        return
    if (out / ".git").exists() or out.resolve() in (Path.cwd().resolve(), Path.home().resolve()):
        raise UserError(f"refusing to clear {out} for --force: it is not a run directory")
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
