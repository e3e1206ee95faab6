"""agentmeter run [--budget USD] [--tag K=V]… [--quiet] [--no-downgrade] AGENT [ARGS…] | -- CMD [ARGS…]

`--budget`, `--tag` and `--no-downgrade` are also taken after AGENT (see AFTER_AGENT_VALUED).

Parsed by hand rather than by typer: everything after AGENT belongs to the agent (`run claude -p x`
must pass `-p` through), `--` must be distinguishable from an agent name, and skipping typer (and the
whole `cli` package) keeps the launch overhead low. `cli/run.py` holds the typer command for `--help`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import NotFoundError, UsageError


@dataclass
class RunArgs:
    agent: str | None = None
    args: list[str] = field(default_factory=list)
    budget_usd: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    unmetered_on_error: bool = False


def parse_run_args(argv: list[str]) -> RunArgs:
    from ..core.parsing import parse_tags

    out = RunArgs()
    tags: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            out.args = argv[i + 1 :]
            if not out.args:
                raise UsageError("no command after --", "agentmeter run -- CMD [ARGS]")
            break
        if a in ("--quiet", "-q"):
            out.quiet = True
        elif a == "--unmetered-on-error":
            out.unmetered_on_error = True
        elif a == "--no-downgrade":
            tags.append("no_downgrade=1")
        elif a.startswith("--budget") or a.startswith("--tag"):
            name, _, value = a.partition("=")
            if name not in ("--budget", "--tag"):
                raise UsageError(f"unknown option {a}", "see: agentmeter run --help")
            if not value:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"{name} needs a value", "e.g. --budget 5 or --tag ticket=ABC-1")
                value = argv[i]
            if name == "--budget":
                out.budget_usd = _budget(value)
            else:
                tags.append(value)
        elif a.startswith("-"):
            raise UsageError(f"unknown option {a}", "options go before the agent: agentmeter run --budget 5 claude …")
        else:
            out.agent, out.args = a, _own_options_after_agent(argv[i + 1 :], out, tags)
            break
        i += 1
    out.tags = parse_tags(tags)
    if out.agent is None and not out.args:
        raise UsageError("nothing to run", "agentmeter run claude, or agentmeter run -- CMD [ARGS]")
    return out


# agentmeter's options that may also follow the agent name (`run claude --budget 5 -p hi`): none of the
# agents defines them (checked against the --help of Claude Code, Codex, Gemini CLI, Copilot CLI, OpenCode
# and Qwen Code), so they cannot be meant for the agent. `-q/--quiet` stays the agent's: several agents
# have a quiet flag of their own. Nothing after a `--` is looked at.
AFTER_AGENT_VALUED = ("--budget", "--tag")
AFTER_AGENT_FLAGS = ("--no-downgrade",)


def _own_options_after_agent(rest: list[str], out: RunArgs, tags: list[str]) -> list[str]:
    kept: list[str] = []
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--":
            kept.extend(rest[i:])
            break
        name, eq, value = a.partition("=")
        if a in AFTER_AGENT_FLAGS:
            tags.append("no_downgrade=1")
        elif name in AFTER_AGENT_VALUED:
            if not eq:
                i += 1
                if i >= len(rest):
                    raise UsageError(f"{name} needs a value", "e.g. --budget 5 or --tag ticket=ABC-1")
                value = rest[i]
            if name == "--budget":
                out.budget_usd = _budget(value)
            else:
                tags.append(value)
        else:
            kept.append(a)
        i += 1
    return kept


def _budget(value: str) -> float:
    try:
        usd = float(value)
    except ValueError:
        raise UsageError(f"--budget {value!r} is not a number", "e.g. --budget 5 (USD)") from None
    if not 0 < usd < float("inf"):
        raise UsageError("--budget must be above 0", "e.g. --budget 5 (USD)")
    return usd


def run_main(argv: list[str]) -> int:
    from .. import render
    from ..home.config import load_config
    from ..render import sessions as render_sessions
    from . import wrapper

    ra = parse_run_args(argv)
    try:
        config = load_config()
        session, launch = wrapper.prepare(config, ra.agent, ra.args, budget_usd=ra.budget_usd, tags=ra.tags)
    except Exception as exc:
        if ra.unmetered_on_error and ra.agent is not None and not isinstance(exc, (UsageError, NotFoundError)):
            _exec_unmetered(ra, exc)
        raise
    if launch.note and not ra.quiet:
        render.info(launch.note)
    if not ra.quiet and not session.joined:
        _banner(config)
    port = _port_of(session.anthropic_url)
    try:
        code = wrapper.spawn(launch, port, session.listener)
    except OSError as exc:  # not executable, a bad interpreter line, …: no session for a launch that never ran
        wrapper.end_session(session, 127, discard_if_empty=True)
        raise NotFoundError(f"could not start {launch.argv[0]}: {exc.strerror or exc}",
                            "check that it is an executable program") from None
    # An agent that exits non-zero before a single request did not launch (it refused an option, found no
    # login, …): no empty session is left behind. A plain command (`run -- make test`) may fail for its own
    # reasons, so its session is kept.
    discarded = wrapper.end_session(session, code, discard_if_empty=code != 0 and ra.agent is not None)
    if not ra.quiet and not session.joined:
        if discarded:
            render.info(f"{ra.agent} exited with {code} before sending any request; no session recorded")
        elif (summary := wrapper.session_summary(session.session_id)) is not None:
            render_sessions.run_summary(summary)
    return code


def _exec_unmetered(ra: RunArgs, exc: Exception) -> None:
    """The shell hooks' promise: the agent starts even when agentmeter cannot (its home is unwritable, its
    config broken, the daemon will not start). One line says why it is unmetered; then the agent replaces
    this process, with agentmeter's own keys removed from its environment."""
    import os
    import shutil
    import sys

    from ..agents import get_agent
    from ..agents.common import PRIVATE_VARS
    from ..core.errors import AgentmeterError
    from ..home.paths import as_storage_error

    binary = shutil.which(get_agent(ra.agent).binary)
    if binary is None:
        return  # the original error stands
    known = as_storage_error(exc) or (exc if isinstance(exc, AgentmeterError) else None)
    why = f"{known.message} ({known.hint})" if known is not None and known.hint else (
        known.message if known is not None else f"{type(exc).__name__}: {exc}")
    from ..home.secrets import redact

    sys.stderr.write(f"agentmeter: {redact(why)}; {ra.agent} runs unmetered\n")
    sys.stderr.flush()
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE_VARS}
    os.execve(binary, [binary, *ra.args], env)


def _banner(config) -> None:
    """One line before the agent starts, only when a window is past its alert threshold."""
    b = config.budget
    if not any(vars(b.caps).values()) and not b.agents:
        return
    from ..commands.budget import window_rows
    from ..core.clock import SystemClock
    from ..render import budget as render_budget

    rows, snoozed = window_rows(config, SystemClock())
    hot = [r for r in rows if r["stage"] != "ok"]
    if hot:
        render_budget.budget_banner(max(hot, key=lambda r: r["used_pct"] or 0), snoozed)


def _port_of(url: str) -> int | None:
    from urllib.parse import urlsplit

    return urlsplit(url).port
