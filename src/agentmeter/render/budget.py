"""`agentmeter budget show|test|snooze` and the budget banner `run` prints."""

from __future__ import annotations

import sys

from . import emit_json, iso, line, usd


def _bar(pct: float | None, width: int = 24) -> str:
    if pct is None:
        return " " * width
    filled = min(width, round(pct / 110 * width))
    return "█" * filled + "·" * (width - filled)


def budget_show(payload: dict, as_json: bool) -> None:
    if as_json:
        emit_json("budget", payload)
        return
    t = payload["thresholds"]
    line(
        f"caps in {payload['timezone']} time · alert {t['alert_at']:.0%} · cheaper model {t['downgrade_at']:.0%}"
        f" · refuse {t['block_at']:.0%}"
    )
    for w in payload["windows"]:
        cap = (
            "no cap"
            if w["cap_usd"] is None and not w["cap_tokens"]
            else usd(w["cap_usd"])
            if w["cap_usd"] is not None
            else f"{w['cap_tokens']:,} tok"
        )
        pct_text = f"{w['used_pct']:.0f}%" if w["used_pct"] is not None else ""
        who = f"  set by: {w['source']}" if w.get("source") else ""
        line(
            f"  {w['name']:<14} {_bar(w['used_pct'])} {usd(w['spent_usd']):>10} / {cap:<12} {pct_text:>5}"
            f"  {w['stage']}{who}"
        )
    if payload.get("snoozed_until"):
        held = [w["name"] for w in payload["windows"] if w.get("source") and not w.get("snoozed")]
        line(
            f"snoozed until {payload['snoozed_until']} (refusals and downgrades paused"
            + (f"; team caps still apply: {', '.join(held)})" if held else ")")
        )
    if payload.get("wallet"):
        line(f"team wallet {payload['wallet']['team']}: {payload['wallet']['note']}")
    if not any(w["cap_usd"] or w["cap_tokens"] for w in payload["windows"]):
        line("no caps set. Try: agentmeter budget set --daily 20 --monthly 300")


def budget_test(result: dict, as_json: bool) -> None:
    if as_json:
        emit_json("budget_test", result)
        return
    lines = ", ".join(f"{k}={v:g}" for k, v in (result.get("plan_lines") or {}).items())
    line(
        f"replayed {result['requests']} requests since {result['since']} against {result['caps'] or 'no caps'}"
        + (f" and plan-window lines {lines}" if lines else "")
    )
    fired_any = False
    for window, stages in result["stages"].items():
        if stages:
            fired_any = True
            line(f"  {window}: " + ", ".join(f"{s} at {when}" for s, when in stages.items()))
    if not fired_any:
        line("  no stage would have fired")
    line(
        f"refused requests: {result['refused']} in {len(result['refused_sessions'])} sessions; "
        f"downgraded: {result['downgraded']} in {len(result['downgraded_sessions'])} sessions"
    )
    line(
        f"spend: {usd(result['actual_usd'])} actual → {usd(result['with_caps_usd'])} with these caps "
        f"(saved {usd(result['saved_usd'])})"
    )
    w = result.get("worst") or {}
    if w:
        line(f"worst: {w['window']} at {w['used_pct']}% ({usd(w['spent_usd'])} of {usd(w['cap_usd'])})")


def snoozed(payload: dict, as_json: bool) -> None:
    if as_json:
        emit_json("snooze", payload)
        return
    prefix = "dry run: would snooze" if payload.get("dry_run") else "budget snoozed"
    line(
        f"{prefix} until {payload['snoozed_until']}: refusals and downgrades paused, alerts continue"
        if payload["snoozed_until"]
        else "snooze ended: caps apply again"
    )
    if payload.get("team_caps_held"):
        line(f"team caps still apply (your team does not allow snoozing them): {', '.join(payload['team_caps_held'])}")


def budget_banner(w: dict, snoozed_until: int | None) -> None:
    what = {
        "alert": "heads-up",
        "downgrade": "easy turns use a cheaper model",
        "blocked": "requests are refused until it resets",
    }[w["stage"]]
    cap = usd(w["cap_usd"]) if w["cap_usd"] is not None else f"{w['cap_tokens']:,} tokens"
    spent = usd(w["spent_usd"]) if w["cap_usd"] is not None else f"{w['spent_tokens']:,}"
    extra = f" (snoozed until {iso(snoozed_until)})" if snoozed_until and w.get("snoozed", True) else ""
    source = f" [{w['source']} cap]" if w.get("source") else ""
    sys.stderr.write(
        f"agentmeter: {w['name']}{source} budget at {w['used_pct']:.0f}% ({spent} of {cap}): {what}{extra}\n"
    )
