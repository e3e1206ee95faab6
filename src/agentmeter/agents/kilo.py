"""Kilo CLI (an OpenCode fork): the same inline-config overlay as OpenCode, in KILO_CONFIG_CONTENT.
Wired from documentation only."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env
from .opencode import overlay


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session))
    env["KILO_CONFIG_CONTENT"] = overlay(session, environ.get("KILO_CONFIG_CONTENT"))
    return Launch([binary, *args], env)


SPEC = AgentSpec(
    "kilo",
    "kilo",
    "npm install -g @kilocode/cli",
    prepare,
    label="Kilo CLI",
    package="npm:@kilocode/cli",
    wire=("anthropic-messages", "openai-chat"),
    how="KILO_CONFIG_CONTENT: provider.<id>.options.baseURL + apiKey",
    refusal="the provider error with agentmeter's message",
)
