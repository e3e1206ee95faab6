"""aider talks through litellm, which reads the OpenAI and Anthropic base-URL variables."""

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


SPEC = AgentSpec("aider", "aider", "pipx install aider-chat", prepare)
