"""One run = one YAML file mapped onto a typed pydantic config (LLaMA-Factory style).

``load_config(path, Model, overrides)`` reads the YAML, applies dotted ``key=value`` overrides from
the command line, validates, and returns the model plus the exact text hashed into provenance.
Validation errors name the bad key and fail before any work starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import UserError

T = TypeVar("T", bound=BaseModel)


def _set_dotted(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise UserError(f"override {dotted!r}: {k!r} is not a mapping in the config")
    d[keys[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    if not overrides:
        return data
    items = overrides.items() if isinstance(overrides, dict) else []
    if isinstance(overrides, list):
        parsed = []
        for o in overrides:
            if "=" not in o:
                raise UserError(f"override {o!r} must look like key.sub=value")
            k, v = o.split("=", 1)
            parsed.append((k.strip(), yaml.safe_load(v)))
        items = parsed
    for k, v in items:
        if v is not None:
            _set_dotted(data, k, v)
    return data


def describe_validation_error(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        parts.append(f"'{loc}': {e['msg']}")
    return f"invalid config {where}: " + "; ".join(parts)


def load_config(path: str | Path | None, model: type[T], overrides: list[str] | dict[str, Any] | None = None,
                base: dict[str, Any] | None = None) -> tuple[T, str]:
    """Return (validated config, raw text for the provenance hash)."""
    text = ""
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise UserError(f"config file not found: {p}")
        text = p.read_text(encoding="utf-8")
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise UserError(f"config {p} is not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise UserError(f"config {p} must be a mapping at the top level")
        data.update(loaded)
    data = apply_overrides(data, overrides)
    try:
        cfg = model.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, str(path) if path else "(from flags)")) from None
    return cfg, text or yaml.safe_dump(data, allow_unicode=True, sort_keys=True)
