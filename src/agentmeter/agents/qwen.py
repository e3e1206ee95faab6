"""Qwen Code: OpenAI-compatible, from OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL. Its own Qwen OAuth
login goes to Qwen's service and cannot be redirected."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session, "qwen"))
    return Launch([binary, *args], env)


SPEC = AgentSpec(
    "qwen",
    "qwen",
    "npm install -g @qwen-code/qwen-code",
    prepare,
    ("openai",),
    label="Qwen Code",
    package="npm:@qwen-code/qwen-code",
    wire=("openai-chat",),
    how="OPENAI_BASE_URL + OPENAI_API_KEY (virtual key); Qwen OAuth is not redirectable",
    refusal="[API Error: 402 …] with agentmeter's message, once (a 429 it retries for minutes)",
    verified="e2e",
    refusal_status=402,
)
