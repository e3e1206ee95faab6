"""Gemini CLI: agentmeter does not yet speak the Gemini API, so its traffic is not metered. The session
still records the run, and the developer is told once rather than shown a reassuring $0."""

from __future__ import annotations

from . import AgentSpec, Launch
from .common import base_env

NOTE = ("agentmeter: Gemini CLI's requests are not metered yet (no Gemini adapter); this session records "
        "the run only.")


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    return Launch([binary, *args], base_env(environ, session), note=NOTE)


SPEC = AgentSpec("gemini", "gemini", "npm install -g @google/gemini-cli", prepare, ())
