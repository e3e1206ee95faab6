"""agentmeter run [--budget USD] [--tag K=V]… [--quiet] [--no-downgrade] AGENT [ARGS…] | -- CMD [ARGS…]

Parsed by hand rather than by typer: everything after AGENT belongs to the agent (`run claude -p x`
must pass `-p` through), `--` must be distinguishable from an agent name, and skipping typer (and the
whole `cli` package) keeps the launch overhead low. `cli/run.py` holds the typer command for `--help`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UsageError


@dataclass
class RunArgs:
    agent: str | None = None
    args: list[str] = field(default_factory=list)
    budget_usd: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    quiet: bool = False


def parse_run_args(argv: list[str]) -> RunArgs:
    from .parsing import parse_tags

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
                try:
                    out.budget_usd = float(value)
                except ValueError:
                    raise UsageError(f"--budget {value!r} is not a number", "e.g. --budget 5 (USD)") from None
                if out.budget_usd <= 0:
                    raise UsageError("--budget must be above 0", "e.g. --budget 5 (USD)")
            else:
                tags.append(value)
        elif a.startswith("-"):
            raise UsageError(f"unknown option {a}", "options go before the agent: agentmeter run --budget 5 claude …")
        else:
            out.agent, out.args = a, argv[i + 1 :]
            break
        i += 1
    out.tags = parse_tags(tags)
    if out.agent is None and not out.args:
        raise UsageError("nothing to run", "agentmeter run claude, or agentmeter run -- CMD [ARGS]")
    return out


def run_main(argv: list[str]) -> int:
    from . import render, wrapper
    from .config import load_config

    ra = parse_run_args(argv)
    config = load_config()
    session, launch = wrapper.prepare(config, ra.agent, ra.args, budget_usd=ra.budget_usd, tags=ra.tags)
    if launch.note and not ra.quiet:
        render.info(launch.note)
    if not ra.quiet and not session.joined:
        _banner(config)
    port = _port_of(session.anthropic_url)
    code = wrapper.spawn(launch, port, session.listener)
    wrapper.end_session(session, code)
    if not ra.quiet and not session.joined:
        summary = wrapper.session_summary(session.session_id)
        if summary is not None:
            render.run_summary(summary)
    return code


def _banner(config) -> None:
    """One line before the agent starts, only when a window is past its alert threshold."""
    b = config.budget
    if not any(vars(b.caps).values()) and not b.agents:
        return
    from . import render
    from .budget_report import window_rows
    from .clock import SystemClock

    rows, snoozed = window_rows(config, SystemClock())
    hot = [r for r in rows if r["stage"] != "ok"]
    if hot:
        render.budget_banner(max(hot, key=lambda r: r["used_pct"] or 0), snoozed)


def _port_of(url: str) -> int | None:
    from urllib.parse import urlsplit

    return urlsplit(url).port
