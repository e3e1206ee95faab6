"""Factory Droid: bring-your-own-key models are `customModels[]` in ~/.factory/settings.json with
`baseUrl` and `apiKey: "${VAR}"`; Factory-hosted models go through Factory's service. `run droid` sets
the session variables and says once which models are metered. Wired from documentation only."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env

NOTE = (
    "agentmeter: Droid meters only custom models whose baseUrl is ${OPENAI_BASE_URL} or ${ANTHROPIC_BASE_URL} "
    "with apiKey ${OPENAI_API_KEY} / ${ANTHROPIC_API_KEY} in ~/.factory/settings.json; Factory-hosted models "
    "are not metered."
)


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session))
    return Launch([binary, *args], env, note=NOTE)


SPEC = AgentSpec(
    "droid",
    "droid",
    "npm install -g droid",
    prepare,
    label="Factory Droid",
    package="npm:droid",
    wire=("anthropic-messages", "openai-responses"),
    metering="byok",
    how="session variables referenced from customModels[] (by hand)",
    refusal="the provider error with agentmeter's message",
)
