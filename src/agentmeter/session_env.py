"""Opening a session on the daemon and the environment a tool needs to use it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import attribution
from .config import Config
from .proxy import daemon


@dataclass(frozen=True)
class SessionEnv:
    session_id: str
    base_url: str
    token: str
    virtual_key: str | None
    key_mode: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def url(self, provider: str) -> str:
        suffix = "/v1" if provider == "openai" else ""
        return f"{self.base_url}/s/{self.token}/{provider}{suffix}"


def open_session(config: Config, *, agent: str | None, tags: dict[str, str] | None = None,
                 budget_usd: float | None = None, cwd: str | None = None) -> SessionEnv:
    info, _ = daemon.ensure_running(port=None)
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
    s = SessionEnv(got["session_id"], info.url, got["token"], got.get("virtual_key"), tuple(got["key_mode"]))
    return SessionEnv(**{**s.__dict__, "env": session_environment(s, agent)})


def session_environment(s: SessionEnv, agent: str | None) -> dict[str, str]:
    """Both provider families unless the agent speaks only one. Credentials only in key mode: a
    subscription login (Claude Pro/Max, ChatGPT) must keep working, and any credential variable would
    replace it (wire-protocols 1.2)."""
    env = {"AGENTMETER_SESSION_ID": s.session_id}
    families = {"claude": ("anthropic",), "codex": ("openai",)}.get(agent or "", ("anthropic", "openai"))
    if "anthropic" in families:
        env["ANTHROPIC_BASE_URL"] = s.url("anthropic")
        if "anthropic" in s.key_mode and s.virtual_key:
            env["ANTHROPIC_API_KEY"] = s.virtual_key
    if "openai" in families:
        env["OPENAI_BASE_URL"] = s.url("openai")
        if "openai" in s.key_mode and s.virtual_key:
            env["OPENAI_API_KEY"] = s.virtual_key
    return env
