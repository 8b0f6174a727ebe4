"""`soaes curate …`. Commands are registered by their modules so extraction and dedup stay apart."""
from __future__ import annotations

import typer

from curation import cli_dedup, cli_extract

app = typer.Typer(no_args_is_help=True)
cli_extract.register(app)
cli_dedup.register(app)
