"""aider talks through litellm, which reads the OpenAI and Anthropic base-URL variables.

aider retries every RateLimitError (any 429) and every APIError (a 402) with backoff for a minute
whatever the body says (measured with 0.86.2); a 400 is a BadRequestError, which it shows once and
stops. So its registry entry asks for a 400 refusal (the message still names the cap and the override)."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    fam = families_env(session)
    env.update(fam)
    env["OPENAI_API_BASE"] = fam["OPENAI_BASE_URL"]
    env["ANTHROPIC_API_BASE"] = fam["ANTHROPIC_BASE_URL"]
    return Launch([binary, *args], env)


SPEC = AgentSpec(
    "aider",
    "aider",
    "pipx install aider-chat",
    prepare,
    label="aider",
    package="pypi:aider-chat",
    wire=("openai-chat", "anthropic-messages"),
    how="OPENAI_API_BASE / ANTHROPIC_API_BASE (litellm) + virtual keys",
    refusal="litellm.BadRequestError: OpenAIException - agentmeter: …, once",
    verified="e2e",
    refusal_status=400,
)
