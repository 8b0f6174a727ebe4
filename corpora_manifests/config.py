"""One run = one YAML file mapped onto a typed pydantic config (LLaMA-Factory style).

``load_config(path, Model, overrides)`` reads the YAML, merges the overrides, validates, and
returns the model plus the exact text hashed into provenance. Validation errors name the bad key
and fail before any work starts.

This module holds the ONE override parser of the toolkit (``soaes … --set key=value`` and every
library caller). Values are parsed with OmegaConf's dotlist grammar, so ``--set a.b=[1,2]`` is a
list, ``=null`` is None (kept, never dropped), ``=2e-6`` a float and ``="007"`` a string. The merge
is ours rather than OmegaConf's so that list indices (``stages.1.learning_rate=2e-6``) work, values
OmegaConf cannot hold (dates in YAML) survive, and every mistake is one clear line.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import UserError

T = TypeVar("T", bound=BaseModel)

_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")

# An override is "key.sub=value" (value parsed) or ("key.sub", value) (value used as is).
Override = str | tuple[str, Any]


def parse_override(item: str) -> tuple[str, Any]:
    """``"a.b=[1, 2]"`` -> ``("a.b", [1, 2])`` with OmegaConf's dotlist value grammar."""
    if "=" not in item:
        raise UserError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not _KEY.match(key):
        raise UserError(f"override {item!r}: {key!r} is not a dotted config key (e.g. dedup.threshold)")
    from omegaconf import OmegaConf

    try:
        # from_dotlist parses the value exactly as `--set` users expect from Hydra/OmegaConf tools;
        # resolve=False keeps "${…}" text verbatim instead of treating it as an interpolation.
        value = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={raw}"]), resolve=False)["v"]
    except Exception as e:  # omegaconf/yaml grammar errors: report the first line only
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"override {item!r}: cannot parse the value ({detail})") from None
    return key, value


def _normalise(overrides: Sequence[Override] | Mapping[str, Any] | None) -> list[tuple[str, Any, str]]:
    if not overrides:
        return []
    if isinstance(overrides, Mapping):
        return [(k, v, f"{k}={v!r}") for k, v in overrides.items()]
    if isinstance(overrides, str):
        overrides = [overrides]
    out = []
    for o in overrides:
        if isinstance(o, str):
            k, v = parse_override(o)
            out.append((k, v, o))
        else:
            k, v = o
            if not isinstance(k, str) or not _KEY.match(k):
                raise UserError(f"override key {k!r} is not a dotted config key")
            out.append((k, v, f"{k}={v!r}"))
    return out


def _merge(old: Any, new: Any) -> Any:
    # A mapping merges into a mapping key by key (OmegaConf's merge); anything else replaces.
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for k, v in new.items():
            merged[k] = _merge(merged.get(k), v) if k in merged else v
        return merged
    return new


def _set(data: dict[str, Any], key: str, value: Any, shown: str) -> None:
    node: Any = data
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[:i]) or "the config"
        if isinstance(node, list):
            if not part.isdigit():
                raise UserError(f"override {shown!r}: {where} is a list; use an index like {where}.0")
            idx = int(part)
            if idx >= len(node):
                raise UserError(f"override {shown!r}: {where} has no index {idx} ({len(node)} items)")
            if last:
                node[idx] = _merge(node[idx], value)
            else:
                node = node[idx]
            continue
        if not isinstance(node, dict):
            raise UserError(f"override {shown!r}: {where} is {node!r}, not a mapping")
        if last:
            node[part] = _merge(node[part], value) if part in node else value
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]


def apply_overrides(data: dict[str, Any], overrides: Sequence[Override] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge overrides into ``data`` (in place, in order: later wins) and return it.

    ``None`` values are set, not skipped: ``--set key=null`` means null. Unknown keys are left for
    the pydantic model to reject (every config model forbids extra keys).
    """
    for key, value, shown in _normalise(overrides):
        _set(data, key, value, shown)
    return data


def describe_validation_error(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"'{loc}': {msg}")
    return f"invalid config {where}: " + "; ".join(parts)


def read_config_data(path: str | Path) -> tuple[dict[str, Any], str]:
    """The YAML mapping of a config file and its exact text (UserError when missing or invalid)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}")
    text = p.read_text(encoding="utf-8")
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        detail = " ".join(str(e).split())
        raise UserError(f"config {p} is not valid YAML: {detail}") from None
    if not isinstance(loaded, dict):
        raise UserError(f"config {p} must be a mapping at the top level")
    return loaded, text


def load_config(path: str | Path | None, model: type[T], overrides: Sequence[Override] | Mapping[str, Any] | None = None,
                base: dict[str, Any] | None = None) -> tuple[T, str]:
    """Return (validated config, raw text for the provenance hash)."""
    import copy

    text = ""
    data: dict[str, Any] = copy.deepcopy(base or {})
    if path is not None:
        loaded, text = read_config_data(path)
        data.update(loaded)
    data = apply_overrides(data, overrides)
    try:
        cfg = model.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, str(path) if path else "(from flags)")) from None
    return cfg, text or yaml.safe_dump(data, allow_unicode=True, sort_keys=True)
