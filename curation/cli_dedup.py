"""Registers `soaes curate` commands. Heavy imports stay inside the command functions."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
