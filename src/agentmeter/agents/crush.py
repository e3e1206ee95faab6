"""Crush (Charm): providers come from crush.json (`providers.<id>.{type, base_url, api_key}`), with no
environment variable for the base URL. `run crush` starts it with the session environment (OpenAI and
Anthropic variables) and says once that only a provider configured with base_url $OPENAI_BASE_URL is
metered. Wired from documentation: its npm package downloads the binary from GitHub at install time,
which this build machine cannot reach."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env

NOTE = (
    "agentmeter: Crush reads its provider base URL only from crush.json; to meter it, set a provider's "
    "base_url to $OPENAI_BASE_URL (or $ANTHROPIC_BASE_URL) and api_key to $OPENAI_API_KEY in your project's "
    ".crush.json. Otherwise its requests are not metered."
)


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session))
    return Launch([binary, *args], env, note=NOTE)


SPEC = AgentSpec(
    "crush",
    "crush",
    "npm install -g @charmland/crush",
    prepare,
    label="Crush",
    package="npm:@charmland/crush",
    wire=("openai-chat", "anthropic-messages"),
    how="session variables; base_url $OPENAI_BASE_URL in crush.json (by hand)",
    refusal="the provider error with agentmeter's message",
)
