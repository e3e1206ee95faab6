"""opencode uses the AI SDK, whose Anthropic base URL includes /v1 (wire-protocols 4)."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session))
    env["ANTHROPIC_BASE_URL"] = session.url("anthropic") + "/v1"
    return Launch([binary, *args], env)


SPEC = AgentSpec("opencode", "opencode", "npm install -g opencode-ai", prepare)
