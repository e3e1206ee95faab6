"""`agentmeter run -- CMD`: both provider families, for any tool that reads the standard variables."""

from __future__ import annotations

from . import Launch
from .common import base_env, families_env


def prepare(session, argv: list[str], environ: dict[str, str]) -> Launch:
    env = base_env(environ, session)
    env.update(families_env(session))
    return Launch(list(argv), env)
