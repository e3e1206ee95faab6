"""One module per agent: how to point it at a session. Each exposes SPEC, an AgentSpec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import UsageError


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    # One short line shown once at start when something is not metered (Cursor, Gemini).
    note: str | None = None


@dataclass(frozen=True)
class AgentSpec:
    name: str
    binary: str
    install: str  # how to get the binary, shown when it is not on PATH
    prepare: Callable[..., Launch]
    families: tuple[str, ...] = ("anthropic", "openai")
    aliases: tuple[str, ...] = field(default_factory=tuple)


def registry() -> dict[str, AgentSpec]:
    from . import aider, claude, codex, cursor, gemini, opencode

    specs = [claude.SPEC, codex.SPEC, cursor.SPEC, gemini.SPEC, aider.SPEC, opencode.SPEC]
    return {s.name: s for s in specs}


def get_agent(name: str) -> AgentSpec:
    known = registry()
    if name in known:
        return known[name]
    raise UsageError(
        f"unknown agent {name!r}",
        f"known agents: {', '.join(known)}; for anything else: agentmeter run -- {name} [ARGS]",
    )
