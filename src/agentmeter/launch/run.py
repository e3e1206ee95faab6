"""agentmeter run [--budget USD] [--tag K=V]… [--quiet] [--no-downgrade] AGENT [ARGS…] | -- CMD [ARGS…]

Parsed by `cli.args.parse_run` (by hand: everything after AGENT belongs to the agent, and `--` must be
distinguishable from an agent name); this module opens the session, runs the agent and sums it up.
"""

from __future__ import annotations

from ..core.errors import NotFoundError, UsageError


def run_main(
    agent: str | None,
    args: list[str],
    *,
    budget_usd: float | None = None,
    tags: dict[str, str] | None = None,
    quiet: bool = False,
    unmetered_on_error: bool = False,
) -> int:
    """Run `agent` (None: `args` is a plain command) in a metered session; its exit code."""
    from .. import render
    from ..home.config import load_config
    from ..render import sessions as render_sessions
    from . import wrapper

    try:
        config = load_config()
        session, launch = wrapper.prepare(config, agent, args, budget_usd=budget_usd, tags=tags or {})
    except Exception as exc:
        if unmetered_on_error and agent is not None and not isinstance(exc, (UsageError, NotFoundError)):
            _exec_unmetered(agent, args, exc)
        raise
    if launch.note and not quiet:
        render.info(launch.note)
    if not quiet and not session.joined:
        _banner(config)
    port = _port_of(session.anthropic_url)
    try:
        code = wrapper.spawn(launch, port, session.listener)
    except OSError as exc:  # not executable, a bad interpreter line, …: no session for a launch that never ran
        wrapper.end_session(session, 127, discard_if_empty=True)
        raise NotFoundError(
            f"could not start {launch.argv[0]}: {exc.strerror or exc}", "check that it is an executable program"
        ) from None
    # An agent that exits non-zero before a single request did not launch (it refused an option, found no
    # login, …): no empty session is left behind. A plain command (`run -- make test`) may fail for its own
    # reasons, so its session is kept.
    discarded = wrapper.end_session(session, code, discard_if_empty=code != 0 and agent is not None)
    if not quiet and not session.joined:
        if discarded:
            render.info(f"{agent} exited with {code} before sending any request; no session recorded")
        elif (summary := wrapper.session_summary(session.session_id)) is not None:
            render_sessions.run_summary(summary)
    return code


def _exec_unmetered(agent: str, args: list[str], exc: Exception) -> None:
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

    binary = shutil.which(get_agent(agent).binary)
    if binary is None:
        return  # the original error stands
    known = as_storage_error(exc) or (exc if isinstance(exc, AgentmeterError) else None)
    why = (
        f"{known.message} ({known.hint})"
        if known is not None and known.hint
        else (known.message if known is not None else f"{type(exc).__name__}: {exc}")
    )
    from ..home.secrets import redact

    sys.stderr.write(f"agentmeter: {redact(why)}; {agent} runs unmetered\n")
    sys.stderr.flush()
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE_VARS}
    os.execve(binary, [binary, *args], env)


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
