"""Goose (Block): per-provider host variables (OPENAI_HOST + OPENAI_BASE_PATH, ANTHROPIC_HOST). Not on
npm or PyPI; wired from documentation only."""

from __future__ import annotations

from urllib.parse import urlsplit

from . import AgentSpec, Launch
from .common import base_env, families_env


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session))
    o = urlsplit(session.url("openai"))
    env["OPENAI_HOST"] = f"{o.scheme}://{o.netloc}"
    env["OPENAI_BASE_PATH"] = o.path.lstrip("/") + "/chat/completions"
    env["ANTHROPIC_HOST"] = session.url("anthropic")
    return Launch([binary, *args], env)


SPEC = AgentSpec(
    "goose",
    "goose",
    "see block.github.io/goose (installer script)",
    prepare,
    label="Goose",
    package="github:block/goose",
    wire=("openai-chat", "anthropic-messages"),
    how="OPENAI_HOST + OPENAI_BASE_PATH, ANTHROPIC_HOST",
    refusal="the provider error with agentmeter's message",
)
