"""`agentmeter status`: the burndown screen, its bars and the plan-window lines."""

from __future__ import annotations

import sys

from . import colour_wanted, duration, emit_json, paint, pct, plural, usd


def burndown_bar(used_pct: float | None, thresholds: dict, width: int) -> str:
    """A bar scaled to the refusal line, with the alert and downgrade marks drawn in."""
    top = max(thresholds["block_at"], 1.0) * 100
    cells = ["░"] * width
    if used_pct is not None:
        for i in range(min(width, round(used_pct / top * width))):
            cells[i] = "█"
    for key, mark in (("alert_at", "a"), ("downgrade_at", "d")):
        pos = round(thresholds[key] * 100 / top * width) - 1
        if 0 <= pos < width and cells[pos] == "░":
            cells[pos] = mark
    return "".join(cells) + "|"


def plan_bar(used_pct: float, line_pct: float | None, width: int) -> str:
    """0–100 % of the provider's window, with the developer's line drawn as |."""
    cells = ["█" if i < round(min(used_pct, 100) / 100 * width) else "░" for i in range(width)]
    if line_pct is not None:
        pos = min(width - 1, max(0, round(line_pct / 100 * width) - 1))
        cells[pos] = "|"
    return "".join(cells)


def pace_text(e: dict) -> str:
    p = e.get("pace") or {}
    if p.get("verdict") == "runs_out" and p.get("runs_out_at"):
        band = p.get("band") or {}
        early = (band.get("early") or "")[11:16]
        late = (band.get("late") or "")[11:16] or "after reset"
        return f"runs out ~{p['runs_out_at'][11:16]} UTC ({early}–{late}) before the reset"
    if p.get("verdict") == "on_track":
        return "on track: lasts to the reset"
    return "pace: not enough readings yet"


def plan_lines(plan: list[dict], cols: int = 80, colour: bool = False) -> list[str]:
    """The plan section of `status`: each subscription window, how full, when it resets, the pace."""
    if not plan:
        return []
    out = ["plan windows (from the provider's own headers):"]
    bar_w = max(10, min(20, cols - 62))
    for e in plan:
        name = f"{e['account'][:10]} {e['label']}"[:22]
        used = f"{e['used_pct']:.0f}%"
        head = f"  {name:<22} {plan_bar(e['used_pct'], e.get('line_pct'), bar_w)} {used:>4} "
        out.append(head + paint(f"{e['stage']:<9}", e["stage"], colour) + f" resets in {duration(e['resets_in_s'])}")
        out.append(f"      {pace_text(e)}"[:cols])
    return out


def wallet_lines(wallet: dict | None, thresholds: dict, bar_w: int, colour: bool) -> list[str]:
    """The team wallet (pooled team caps) under the personal windows, with how fresh the team's figure is."""
    if not wallet:
        return []
    out = [f"team wallet {wallet['team']}: {wallet['note']}"]
    for w in wallet["windows"]:
        cap = usd(w["cap_usd"]) if w["cap_usd"] is not None else f"{w['cap_tokens']:,}t"
        pct_text = f"{w['used_pct']:.0f}%" if w["used_pct"] is not None else ""
        name = w["name"].removeprefix("wallet ").replace("member ", "you ")
        out.append(
            f"  {name:<9} {burndown_bar(w['used_pct'], thresholds, bar_w)} {usd(w['spent_usd']):>9} / "
            f"{cap:<8} {pct_text:>4} " + paint(w["stage"], w["stage"], colour)
        )
    return out


def status_screen(payload: dict, as_json: bool) -> None:
    """Plain text (no rich: this is the fast path), colour only on a terminal, fits 80 columns."""
    if as_json:
        emit_json("status", payload)
        return
    import shutil

    cols = shutil.get_terminal_size((100, 24)).columns
    colour = colour_wanted()
    bar_w = max(10, min(30, cols - 60))
    out = [f"agentmeter status · {payload['generated_at'][:16].replace('T', ' ')} ({payload['timezone']})"]
    for w in payload["windows"]:
        cap = (
            usd(w["cap_usd"]) if w["cap_usd"] is not None else f"{w['cap_tokens']:,}t" if w["cap_tokens"] else "no cap"
        )
        pct_text = f"{w['used_pct']:.0f}%" if w["used_pct"] is not None else ""
        head = (
            f"{w['name']:<5} {burndown_bar(w['used_pct'], payload['thresholds'], bar_w)} "
            f"{usd(w['spent_usd']):>9} / {cap:<8} {pct_text:>4} "
        )
        source = w.get("cap_source")
        out.append(
            (
                head
                + paint(f"{w['stage']:<9}", w["stage"], colour)
                + (f" {source} cap" if source and source != "personal" else "")
            ).rstrip()
        )
        f = w.get("forecast_usd")
        if f:
            detail = f"      forecast {usd(f['p50'])} (P10 {usd(f['p10'])} – P90 {usd(f['p90'])})"
            if w.get("burn_rate_usd_per_day"):
                detail += f" · burn {usd(w['burn_rate_usd_per_day'])}/day"
            if w.get("time_to_cap_hours") is not None and w["cap_usd"]:
                h = w["time_to_cap_hours"]
                detail += " · over cap" if h <= 0 else f" · cap in {h:.0f}h" if h < 72 else f" · cap in {h / 24:.0f}d"
            out.append(detail[:cols])
    if any(w["used_pct"] is not None for w in payload["windows"]):
        t = payload["thresholds"]
        out.append(
            f"      bar: █ spent · a alert {t['alert_at']:.0%} · d cheaper model {t['downgrade_at']:.0%}"
            f" · | refusal {t['block_at']:.0%}"[:cols]
        )
    if payload.get("empty"):
        out.append("no usage recorded yet. Next: agentmeter run claude (or codex, …) to meter one;")
        out.append("  agentmeter demo for a tour with no key; agentmeter import claude for past use")
        if not any(w["cap_usd"] or w["cap_tokens"] for w in payload["windows"]):
            out.append("set a cap: agentmeter budget set --daily 20 --monthly 300")
    out += plan_lines(payload.get("plan") or [], cols, colour)
    out += wallet_lines(payload.get("wallet"), payload["thresholds"], bar_w, colour)
    today = payload["today"]
    out.append(
        f"today: {plural(len(today['sessions']), 'session')} · {plural(today['requests'], 'request')} · "
        f"{usd(today['spent_usd'])}"
    )
    shown = 8
    for s in today["sessions"][:shown]:
        hit = pct(s["cache_hit_rate"])
        flag = "  ⚠ low cache hit rate" if s["low_cache"] else ""
        mark = "●" if s.get("running") else " "
        cost = "refused" if s.get("refused") and s["refused"] == s["requests"] else usd(s["cost_usd"])
        if s.get("refused") and s["refused"] != s["requests"]:
            flag = f"  {s['refused']} refused" + flag
        out.append(
            f" {mark}{s['id']:<12} {s['agent']:<8} {(s['repo'] or '—')[:32]:<32} {cost:>9}  cache {hit:>4}{flag}"[:cols]
        )
    if len(today["sessions"]) > shown:
        out.append(f"  … and {len(today['sessions']) - shown} more (agentmeter sessions --since today)")
    if any(s.get("running") for s in today["sessions"][:shown]):
        out.append("  ● running now")
    if payload["by_agent"]:
        out.append(
            "this month by agent: "
            + " · ".join(f"{a['agent']} {usd(a['spent_usd'])} ({pct(a['share'])})" for a in payload["by_agent"])
        )
    sub = payload["subscription"]
    if sub["api_equivalent_usd"]:
        out.append(
            f"subscription use (API-equivalent, not billed): {usd(sub['api_equivalent_usd'])}"
            f" · billed: {usd(sub['billed_usd'])}"
        )
    for u in payload["unpriced_models"]:
        out.append(
            f"unpriced: {u['provider']}:{u['model']} · {u['requests']} requests counted at a fallback "
            f"{usd(u['fallback_usd'])} · {u['explain']}"
        )
    if payload.get("snoozed_until"):
        out.append(f"snoozed until {payload['snoozed_until']}: refusals and downgrades paused")
    if payload.get("prices", {}).get("reprice_suggested"):
        out.append(f"prices changed ({payload['prices']['reprice_suggested']}): run agentmeter reprice")
    out.append(f"sync: {payload['sync']['state']}")
    sys.stdout.write("\n".join(out) + "\n")
