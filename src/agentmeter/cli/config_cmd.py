"""agentmeter config path|show."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from .. import render
from ..home.config import load_config
from ..home.paths import get_paths

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
    """The effective configuration: the file, defaults, and the environment (AGENTMETER_PORT, upstreams)."""
    import os

    from ..home.config import DEFAULT_UPSTREAMS

    config = load_config()
    cfg = asdict(config)
    cfg["source"] = str(cfg["source"]) if cfg["source"] else None
    cfg["proxy"]["port"] = config.port()  # what the proxy would listen on now
    cfg["upstreams"] = {name: config.upstream(name) for name in DEFAULT_UPSTREAMS}
    names = [
        "AGENTMETER_HOME",
        "AGENTMETER_PORT",
        "AGENTMETER_COLLECTOR_URL",
        "AGENTMETER_DISABLE",
        *(f"AGENTMETER_UPSTREAM_{n.upper()}" for n in DEFAULT_UPSTREAMS),
    ]
    cfg["environment"] = {n: os.environ[n] for n in names if os.environ.get(n)}
    if as_json:
        render.emit_json("config", cfg)
    else:
        render.line(json.dumps(cfg, indent=2, default=str))
