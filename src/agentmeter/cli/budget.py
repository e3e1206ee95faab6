"""agentmeter budget set|show|test|snooze."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import render
from ..core.clock import SystemClock
from ..core.errors import UsageError
from ..core.parsing import parse_since
from ..home.config import load_config, update_config
from ..home.paths import get_paths
from ..render import budget as render_budget

app = typer.Typer(help="Personal caps: alert at 80 %, cheaper model at 95 %, refusal at 110 %.", no_args_is_help=True)

Usd = Annotated[str | None, typer.Option(metavar="USD", help="USD (20, $20, 20$), or 'off' to remove the cap.")]
Tok = Annotated[str | None, typer.Option(metavar="TOKENS", help="Tokens, or 'off' to remove the cap.")]
FLAGS = ("daily", "weekly", "monthly")
Line = Annotated[str | None, typer.Option(help="Plan-window line as a fraction (0.9 keeps 10 %), or 'off'.")]


def _parse(value: str | None, name: str, integer: bool):
    if value is None:
        return None, False
    if value.strip().lower() in ("off", "none"):
        return None, True
    text = value.strip().replace(",", "").replace("_", "")
    if not integer:  # $10 and 10$ both mean ten dollars
        text = text.removeprefix("$").removesuffix("$").strip()
    example = "500000" if integer else "20"
    try:
        number = int(text) if integer else float(text)
    except ValueError:
        raise UsageError(f"--{name} {value!r} is not a number", f"e.g. --{name} {example}, or off") from None
    if number != number or number in (float("inf"), float("-inf")):  # NaN and inf parse as floats
        raise UsageError(
            f"--{name} {value!r} is not a cap", f"give an amount, e.g. --{name} {example}; off removes the cap"
        )
    if number <= 0:
        raise UsageError(f"--{name} must be above 0", "use off to remove a cap")
    return number, False


def _plan_changes(five_hour: str | None, seven_day: str | None) -> dict:
    changes = {}
    for key, value in (("five_hour", five_hour), ("seven_day", seven_day)):
        number, off = _parse(value, key.replace("_", "-"), False)
        if number is not None and number > 1:
            raise UsageError(
                f"--{key.replace('_', '-')} is a fraction of the provider's window",
                f"e.g. --{key.replace('_', '-')} 0.9 to keep 10 % in reserve",
            )
        if number is not None or off:
            changes[key] = number
    return changes


def _changes(daily, weekly, monthly, daily_tokens, weekly_tokens, monthly_tokens) -> dict:
    changes = {}
    for flag, value in zip(FLAGS, (daily, weekly, monthly), strict=True):
        number, off = _parse(value, flag, False)
        if number is not None or off:
            changes[f"{flag}_usd"] = number
    for flag, value in zip(FLAGS, (daily_tokens, weekly_tokens, monthly_tokens), strict=True):
        number, off = _parse(value, f"{flag}-tokens", True)
        if number is not None or off:
            changes[f"{flag}_tokens"] = number
    return changes


@app.command("set")
def set_(
    daily: Usd = None,
    weekly: Usd = None,
    monthly: Usd = None,
    daily_tokens: Tok = None,
    weekly_tokens: Tok = None,
    monthly_tokens: Tok = None,
    five_hour: Line = None,
    seven_day: Line = None,
    agent: Annotated[str | None, typer.Option(help="Set a sub-cap for one agent (claude, codex, …).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write caps to config.toml (comments and layout kept); the running proxy picks them up within a second."""
    changes = _changes(daily, weekly, monthly, daily_tokens, weekly_tokens, monthly_tokens)
    plan = _plan_changes(five_hour, seven_day)
    if not changes and not plan:
        raise UsageError("no cap given", "e.g. agentmeter budget set --daily 20 --monthly 300")
    agent = _known_agent(agent) if agent else None
    section = f"budget.agents.{agent}" if agent else "budget"
    path = get_paths().config_file
    if dry_run:
        payload = {"dry_run": True, "config": str(path), "section": section, "changes": {**changes, **plan}}
        if as_json:
            render.emit_json("budget_set", payload)
        else:
            render.line(
                f"would write to {path} [{section}]: "
                + ", ".join(f"{k} = {v}" if v is not None else f"remove {k}" for k, v in {**changes, **plan}.items())
            )
        return
    by_section = {k: v for k, v in ((section, changes), (f"{section}.plan", plan)) if v}
    before = _values(path, by_section)
    update_config(path, by_section)
    _record_override("set", f"{section}: " + ", ".join(f"{k}={v}" for k, v in {**changes, **plan}.items()))
    _audit("budget.set", [(name, before[name], values) for name, values in by_section.items()])
    show(as_json=as_json)


def _known_agent(name: str) -> str:
    """A sub-cap for an agent that is never launched would never fire: a typo is an error."""
    import difflib

    from ..agents import registry

    specs = registry().values()
    for spec in specs:
        if name == spec.name or name in spec.aliases:
            return spec.name
    names = [s.name for s in specs]
    close = difflib.get_close_matches(name, names, n=1)
    raise UsageError(
        f"unknown agent {name!r}",
        (f"did you mean {close[0]!r}? " if close else "") + f"known agents: {', '.join(names)}",
    )


@app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Caps and what is spent against them now."""
    from ..commands.budget import wallet_state, window_rows

    config = load_config()
    rows, snoozed = window_rows(config, SystemClock())
    b = config.budget
    payload = {
        "windows": rows,
        "thresholds": {"alert_at": b.alert_at, "downgrade_at": b.downgrade_at, "block_at": b.block_at},
        "timezone": b.timezone,
        "snoozed_until": render.iso(snoozed),
        "config": str(get_paths().config_file),
        "wallet": wallet_state(config, SystemClock()),
    }
    render_budget.budget_show(payload, as_json)


@app.command("test")
def test(
    daily: Usd = None,
    weekly: Usd = None,
    monthly: Usd = None,
    daily_tokens: Tok = None,
    weekly_tokens: Tok = None,
    monthly_tokens: Tok = None,
    five_hour: Line = None,
    seven_day: Line = None,
    since: Annotated[str, typer.Option(help="How far back to replay: 30d, 2w, 12h.")] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Replay your history through these caps: when each stage would have fired, what it would have saved."""
    from dataclasses import replace

    from ..commands.budget import dry_run

    config = load_config()
    changes = _changes(daily, weekly, monthly, daily_tokens, weekly_tokens, monthly_tokens)
    if changes:
        caps = replace(config.budget.caps, **changes)
        config = replace(config, budget=replace(config.budget, caps=caps))
    plan = _plan_changes(five_hour, seven_day)
    if plan:
        lines = {k: v for k, v in {**config.budget.plan, **plan}.items() if v is not None}
        config = replace(config, budget=replace(config.budget, plan=lines))
    result = dry_run(config, SystemClock(), parse_since(since))
    render_budget.budget_test(result, as_json)


@app.command("snooze")
def snooze(
    duration: Annotated[str, typer.Argument(help="30m, 1h, 2h … or off.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be paused; record nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pause refusals and downgrades for a while (alerts continue). Recorded in the ledger. A cap your team
    set on the collector is paused only if the team allows it."""
    from ..proxy import daemon

    clock = SystemClock()
    if duration.strip().lower() == "off":
        until = clock.now_ms()
    else:
        delta = parse_since(duration)
        if delta > parse_since("1d"):
            raise UsageError("a snooze is at most 1 day", "to change the cap instead: agentmeter budget set …")
        until = clock.now_ms() + int(delta.total_seconds() * 1000)
    if not dry_run:
        previous = _snoozed_until(clock.now_ms())
        info = daemon.status()
        if info.running:
            daemon.control("/_agentmeter/v1/snooze", {"until_ms": until, "detail": duration}, info)
        else:
            _record_override("snooze", duration, until_ms=until)
        _audit(
            "budget.snooze",
            [
                (
                    "budget",
                    {"snoozed_until": render.iso(previous)},
                    {"snoozed_until": render.iso(until) if duration.strip().lower() != "off" else None},
                )
            ],
            detail=duration.strip(),
        )
    from ..commands.budget import team_caps_held

    render_budget.snoozed(
        {
            "snoozed_until": render.iso(until) if duration != "off" else None,
            "dry_run": dry_run,
            "team_caps_held": team_caps_held(load_config()) if duration != "off" else [],
        },
        as_json,
    )


def _record_override(kind: str, detail: str, until_ms: int | None = None) -> None:
    """Overrides are explicit and recorded. With the daemon down, the CLI writes the ledger itself."""
    from ..ledger import open_ledger
    from ..proxy import daemon

    now = SystemClock().now_ms()
    if kind == "snooze" or not daemon.status().running:
        ledger = open_ledger(get_paths().ledger)
        try:
            ledger.add_override(kind, now, until_ms, detail)
        finally:
            ledger.close()


def _values(path, by_section: dict[str, dict]) -> dict[str, dict]:
    """The values the keys about to change have in the file now (None: not set), for the audit trail."""
    import tomllib

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, tomllib.TOMLDecodeError):
        doc = {}
    out = {}
    for section, values in by_section.items():
        node = doc
        for part in section.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        out[section] = {k: node.get(k) if isinstance(node, dict) else None for k in values}
    return out


def _audit(action: str, changes: list[tuple[str, dict, dict]], detail: str = "") -> None:
    """One audit entry per changed section: who (the OS user), when, old and new values."""
    from ..ledger import open_ledger
    from ..ledger.audit import os_user, record

    now = SystemClock().now_ms()
    ledger = open_ledger(get_paths().ledger)
    try:
        for target, old, new in changes:
            record(
                ledger.conn, at_ms=now, actor=os_user(), action=action, target=target, old=old, new=new, detail=detail
            )
    finally:
        ledger.close()


def _snoozed_until(now_ms: int) -> int | None:
    from ..ledger import open_ledger

    ledger = open_ledger(get_paths().ledger, readonly=True)
    try:
        return ledger.snoozed_until(now_ms)
    finally:
        ledger.close()
