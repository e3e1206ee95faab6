"""OpenCode: its AI-SDK providers take `provider.<id>.options.baseURL` and `apiKey` from the config, and
OPENCODE_CONFIG_CONTENT (inline JSON, highest precedence) carries them for this run only, so the
developer's opencode.json is never edited. The AI-SDK Anthropic base URL includes /v1 (wire-protocols 4)."""

from __future__ import annotations

import json

from . import AgentSpec, Launch
from .common import base_env, families_env


def overlay(session, current: str | None, env_var: str = "OPENCODE_CONFIG_CONTENT") -> str:
    """The developer's inline config (if any) with the anthropic and openai providers pointed at the session."""
    try:
        config = json.loads(current) if current else {}
    except ValueError:
        config = {}
    if not isinstance(config, dict):
        config = {}
    providers = config.setdefault("provider", {})
    for pid, family, suffix in (("anthropic", "anthropic", "/v1"), ("openai", "openai", "")):
        entry = providers.setdefault(pid, {})
        options = entry.setdefault("options", {})
        options["baseURL"] = session.url(family) + suffix
        if family in session.key_mode and session.virtual_key:
            options["apiKey"] = session.virtual_key
    return json.dumps(config)


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session))
    env["ANTHROPIC_BASE_URL"] = session.url("anthropic") + "/v1"
    env["OPENCODE_CONFIG_CONTENT"] = overlay(session, environ.get("OPENCODE_CONFIG_CONTENT"))
    return Launch([binary, *args], env)


SPEC = AgentSpec(
    "opencode",
    "opencode",
    "npm install -g opencode-ai",
    prepare,
    label="OpenCode",
    package="npm:opencode-ai",
    wire=("anthropic-messages", "openai-responses"),
    how="OPENCODE_CONFIG_CONTENT: provider.<id>.options.baseURL + apiKey (opencode.json untouched)",
    refusal="the provider error with agentmeter's message, once (a 429 it retries)",
    verified="e2e",
    refusal_status=402,
)
