"""agentmeter proxy start|stop|status|serve, and agentmeter env."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import render
from ..home.config import load_config
from ..proxy import daemon
from ..render import proxy as render_proxy

app = typer.Typer(help="The per-user metering proxy on 127.0.0.1.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command()
def start(as_json: JsonOpt = False) -> None:
    """Start the proxy in the background (no-op when it is already running)."""
    load_config()  # a broken config fails here, with its line, not in the detached daemon
    info, started = daemon.ensure_running()
    if as_json:
        render.emit_json("proxy_status", {**info.as_dict(), "started": started})
    else:
        render.line(f"agentmeter proxy {'started' if started else 'already running'} (pid {info.pid}) at {info.url}")


@app.command()
def stop(as_json: JsonOpt = False) -> None:
    """Stop the proxy. Sessions live in the ledger and survive a restart."""
    info = daemon.stop()
    if as_json:
        render.emit_json("proxy_stop", {"stopped": info.running, "pid": info.pid})
    else:
        render.line("agentmeter proxy stopped" if info.running else "agentmeter proxy was not running")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Is the proxy running, where, and which upstreams it relays to."""
    info = daemon.status()
    payload = info.as_dict()
    if info.running:
        payload["upstreams"] = (daemon.health(info.port) or {}).get("upstreams")
    render_proxy.proxy_status(payload, as_json)


@app.command()
def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="Port (default: config, AGENTMETER_PORT, 8788).")] = None,
    quiet: Annotated[bool, typer.Option(help="Log only to the log file.")] = False,
) -> None:
    """Run the proxy in the foreground (what `start` runs detached)."""
    from .args import ServeArgs
    from .fast import run_serve

    run_serve(ServeArgs(**ctx.params))


def env(
    agent: Annotated[str | None, typer.Option(help="Only this agent's variables (claude, codex, …).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Attach K=V to the session (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a session and print the environment a tool needs to use it: eval "$(agentmeter env)"."""
    from ..core.parsing import parse_tags
    from ..launch.session import open_session

    s = open_session(load_config(), agent=agent, tags=parse_tags(tag))
    if as_json:
        render.emit_json("env", {"session_id": s.session_id, "env": s.env, "key_mode": list(s.key_mode)})
    else:
        mode = "key mode: " + ", ".join(s.key_mode) if s.key_mode else "passthrough: your own credentials"
        render_proxy.exports(s.env, comment=f"agentmeter session {s.session_id} ({mode})")
