"""agentmeter keys set|list|rm."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import render
from ..home import secrets as keystore

app = typer.Typer(help="Real provider keys for key mode (never shown to the agent).", no_args_is_help=True)


@app.command("set")
def set_(provider: Annotated[str, typer.Argument(help="anthropic, openai, gemini or collector")]) -> None:
    """Store a key: typed at a hidden prompt, or piped on stdin."""
    if sys.stdin.isatty():
        value = typer.prompt(f"{provider} key", hide_input=True)
    else:
        value = sys.stdin.readline()
    before = keystore.get_secret(provider)
    where = keystore.set_secret(provider, value)
    _audit("key.set", provider, before, where)
    place = "the OS keyring" if where == "keyring" else f"the private file {keystore.credentials_path()}"
    render.info(f"stored the {provider} key in {place}; new sessions use it (agentmeter env / run)")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Which keys are set (masked) and where each lives."""
    rows = []
    for name in keystore.NAMES:
        s = keystore.get_secret(name)
        rows.append(
            {
                "provider": name,
                "set": s is not None,
                "where": s.where if s else None,
                "masked": s.masked() if s else None,
            }
        )
    if as_json:
        render.emit_json("keys", {"keys": rows, "keyring": keystore.keyring_backend_name()})
        return
    for r in rows:
        render.line(f"{r['provider']:<10} {r['masked'] + '  (' + r['where'] + ')' if r['set'] else 'not set'}")
    render.line(f"keyring: {keystore.keyring_backend_name()}")


@app.command("rm")
def rm(provider: Annotated[str, typer.Argument(help="anthropic, openai, gemini or collector")]) -> None:
    """Remove a stored key (an environment variable is yours to unset)."""
    before = keystore.get_secret(provider)
    removed = keystore.delete_secret(provider)
    if removed:
        _audit("key.rm", provider, before, None, detail="removed from " + ", ".join(removed))
    render.info(f"removed the {provider} key from {', '.join(removed)}" if removed else f"no stored {provider} key")


def _audit(action: str, provider: str, before, where: str | None, detail: str = "") -> None:
    """Who set or removed which key, when, and where it lived: never the key itself, nor a masked form."""
    from ..core.clock import SystemClock
    from ..home.paths import get_paths
    from ..ledger import open_ledger
    from ..ledger.audit import os_user, record

    ledger = open_ledger(get_paths().ledger)
    try:
        record(
            ledger.conn,
            at_ms=SystemClock().now_ms(),
            actor=os_user(),
            action=action,
            target=provider,
            old={"set": True, "where": before.where} if before else {"set": False},
            new={"set": True, "where": where} if where else {"set": False},
            detail=detail,
        )
    finally:
        ledger.close()
