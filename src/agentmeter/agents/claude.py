"""Claude Code: ANTHROPIC_BASE_URL to the session. In key mode ANTHROPIC_AUTH_TOKEN is the virtual key (Claude
Code asks about an unapproved ANTHROPIC_API_KEY every session, never about this one) and any ANTHROPIC_API_KEY
from the shell is withheld; in passthrough mode no credential is set, so a Pro/Max login keeps working
(wire-protocols 1.2)."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session, "claude"))
    if "ANTHROPIC_AUTH_TOKEN" in env and "anthropic" in session.key_mode:
        # Both set, Claude Code would send the shell's key as x-api-key beside the virtual one (and ask).
        env.pop("ANTHROPIC_API_KEY", None)
    return Launch([binary, *args], env)


SPEC = AgentSpec(
    "claude",
    "claude",
    "npm install -g @anthropic-ai/claude-code",
    prepare,
    ("anthropic",),
    label="Claude Code",
    package="npm:@anthropic-ai/claude-code",
    wire=("anthropic-messages",),
    how="ANTHROPIC_BASE_URL (+ ANTHROPIC_API_KEY virtual key in key mode)",
    refusal="API Error: Request rejected (429) · agentmeter: …, once",
    import_source="~/.claude/projects",
    verified="e2e",
)
