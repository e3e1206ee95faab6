"""Cline CLI: its provider and base URL are stored by `cline auth` (under CLINE_DIR), not read from the
environment. A private CLINE_DIR would drop the developer's own login, so `run cline` starts it with the
session variables and a one-line note on how to point it at them. Wired from documentation only."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env, families_env

NOTE = (
    "agentmeter: Cline takes its base URL from `cline auth -p openai -b $OPENAI_BASE_URL -k $OPENAI_API_KEY`; "
    "without that its requests are not metered."
)


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session))
    return Launch([binary, *args], env, note=NOTE)


SPEC = AgentSpec(
    "cline",
    "cline",
    "npm install -g cline",
    prepare,
    label="Cline CLI",
    package="npm:cline",
    wire=("openai-chat", "anthropic-messages"),
    how="session variables; `cline auth … -b $OPENAI_BASE_URL` by hand",
    refusal="the provider error with agentmeter's message",
)
