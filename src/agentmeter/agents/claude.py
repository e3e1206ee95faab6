"""Claude Code: ANTHROPIC_BASE_URL to the session. In key mode ANTHROPIC_API_KEY is the virtual key; in
passthrough mode no credential is set, so a Pro/Max login keeps working (wire-protocols 1.2)."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session, ("anthropic",)))
    return Launch([binary, *args], env)


SPEC = AgentSpec("claude", "claude", "npm install -g @anthropic-ai/claude-code", prepare, ("anthropic",),
                 label="Claude Code", package="npm:@anthropic-ai/claude-code", wire=("anthropic-messages",),
                 how="ANTHROPIC_BASE_URL (+ ANTHROPIC_API_KEY virtual key in key mode)",
                 refusal="API Error: Request rejected (429) · agentmeter: …, once", import_source="~/.claude/projects",
                 verified="e2e")
