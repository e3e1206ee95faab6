"""agentmeter config path|show."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from .. import render
from ..config import load_config
from ..paths import get_paths

app = typer.Typer(help="The configuration file.", no_args_is_help=True)


@app.command("path")
def path(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Where config.toml lives."""
    p = get_paths().config_file
    if as_json:
        render.emit_json("config_path", {"path": str(p), "exists": p.exists()})
    else:
        render.line(str(p))


@app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The effective configuration (file plus defaults)."""
    cfg = asdict(load_config())
    cfg["source"] = str(cfg["source"]) if cfg["source"] else None
    if as_json:
        render.emit_json("config", cfg)
    else:
        render.line(json.dumps(cfg, indent=2, default=str))
