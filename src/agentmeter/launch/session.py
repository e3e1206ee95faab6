"""Opening a session on the daemon: ensure it runs, hold its listening socket, register who/where/what."""

from __future__ import annotations

import os
from dataclasses import replace

from ..agents.session_env import SessionEnv, session_environment
from ..home import attribution
from ..home.config import Config
from ..proxy import daemon


def open_session(
    config: Config,
    *,
    agent: str | None,
    tags: dict[str, str] | None = None,
    budget_usd: float | None = None,
    cwd: str | None = None,
) -> SessionEnv:
    info, _ = daemon.ensure_running(port=None)
    listener = daemon.hold_listener(info)
    if listener is None:  # it died between the two steps: once more (an older daemon simply has no offer)
        info, _ = daemon.ensure_running(port=None)
        listener = daemon.hold_listener(info)
    who = attribution.detect(cwd, config.identity.developer)
    spec = {
        "agent": agent or "other",
        "developer": who.developer,
        "team": config.identity.team,
        "cost_center": config.identity.cost_center,
        "repo": who.repo,
        "branch": who.branch,
        "cwd": who.cwd,
        "tags": tags or {},
        "budget_usd": budget_usd,
        "pid": os.getppid(),
    }
    got = daemon.control("/_agentmeter/v1/sessions", spec, info)
    root = f"{info.url}/s/{got['token']}"
    s = SessionEnv(
        got["session_id"],
        f"{root}/anthropic",
        f"{root}/openai/v1",
        got.get("virtual_key"),
        tuple(got["key_mode"]),
        listener=listener,
    )
    return replace(s, env=session_environment(s, agent))
