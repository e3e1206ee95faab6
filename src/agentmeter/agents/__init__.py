"""The agent registry: one module per agent, each exposing SPEC, an AgentSpec — data about the agent
(binary, package, wire formats, how it is metered, what it shows on a refusal, where its own logs are)
plus `prepare`, which points one launch at a session. Adding an agent is one module listed in MODULES
and a test."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.errors import UsageError

# live: every model request goes through the proxy (metered and capped). byok: live only with the
# developer's own provider key; the vendor's hosted models are not. import: usage is read from the
# agent's own logs or export afterwards. none: cannot be metered here.
METERING = ("live", "byok", "import", "none")

# Registry order is the order `agentmeter agents` and `doctor` list them in.
MODULES = (
    "claude",
    "codex",
    "gemini",
    "copilot",
    "opencode",
    "qwen",
    "aider",
    "crush",
    "cline",
    "kilo",
    "droid",
    "goose",
    "cursor",
    "amp",
)


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    # One short line shown once at start when something is not metered (Cursor, Copilot-hosted models).
    note: str | None = None


@dataclass(frozen=True)
class AgentSpec:
    name: str
    binary: str
    install: str  # how to get the binary, shown when it is not on PATH
    prepare: Callable[..., Launch]
    families: tuple[str, ...] = ("anthropic", "openai")
    aliases: tuple[str, ...] = field(default_factory=tuple)
    label: str = ""  # the product's own name
    package: str = ""  # npm:@scope/name, pypi:name, or a download page
    wire: tuple[str, ...] = ()  # anthropic-messages, openai-responses, openai-chat, gemini
    metering: str = "live"  # one of METERING
    how: str = ""  # how `run` points it at the proxy, one line
    refusal: str = ""  # what the developer sees when agentmeter refuses, in the agent's own words
    import_source: str | None = None  # `agentmeter import NAME` reads these logs
    verified: str = "documentation"  # `e2e`: a test runs the real binary; `documentation`: wired from docs only
    # The HTTP status of agentmeter's refusal. 429 everywhere it is shown once; an agent that retries every
    # 429 whatever its body says (measured) gets the status it shows once without retrying (402, or 400).
    refusal_status: int = 429

    @property
    def title(self) -> str:
        return self.label or self.name


def registry() -> dict[str, AgentSpec]:
    specs = [importlib.import_module(f"{__name__}.{m}").SPEC for m in MODULES]
    return {s.name: s for s in specs}


@functools.cache
def refusal_status(agent: str | None) -> int:
    """The refusal status for a session's agent (the proxy asks; unknown agents get 429)."""
    spec = registry().get(agent or "")
    return spec.refusal_status if spec is not None else 429


def get_agent(name: str) -> AgentSpec:
    import difflib

    known = registry()
    if name in known:
        return known[name]
    for spec in known.values():
        if name in spec.aliases:
            return spec
    close = difflib.get_close_matches(name.lower(), [*known, *(a for s in known.values() for a in s.aliases)], n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(
        f"unknown agent {name!r}",
        f"{guess}known agents: {', '.join(known)}; for anything else: agentmeter run -- {name} [ARGS]",
    )
