"""aider talks through litellm, which reads the OpenAI and Anthropic base-URL variables. litellm retries
a 429 on its own, but agentmeter's refusal carries `x-should-retry: false` and `insufficient_quota`,
which litellm and the OpenAI SDK treat as final."""

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


SPEC = AgentSpec("aider", "aider", "pipx install aider-chat", prepare,
                 label="aider", package="pypi:aider-chat", wire=("openai-chat", "anthropic-messages"),
                 how="OPENAI_API_BASE / ANTHROPIC_API_BASE (litellm) + virtual keys",
                 refusal="litellm.RateLimitError … agentmeter: …", verified="e2e")
