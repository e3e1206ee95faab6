"""Cursor: its model traffic leaves from Cursor's backend (BYOK included) and cannot reach a loopback
proxy; cursor-agent has no base-URL setting (wire-protocols 3). So a `run cursor` session records the
window and repo, injects the session environment for whatever inside honours it, and says so once."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env

NOTE = (
    "agentmeter: Cursor sends its model requests from Cursor's servers, so they are not metered or "
    "capped live. This session records when and where you worked; usage from Cursor's export can be "
    "attributed to it later. Terminals and tools inside Cursor are metered."
)


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session))
    return Launch([binary, *args], env, note=NOTE)


SPEC = AgentSpec(
    "cursor",
    "cursor",
    "download Cursor from cursor.com, then Cmd/Ctrl+Shift+P > Install 'cursor' command",
    prepare,
    label="Cursor",
    package="cursor.com",
    wire=("vendor",),
    metering="import",
    how="traffic leaves from Cursor's servers; the session records time and repo",
    refusal="(not enforceable live)",
    import_source="Cursor usage export (agentmeter import cursor)",
)
