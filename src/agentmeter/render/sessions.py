"""`agentmeter sessions`, `session show` and the summary `agentmeter run` prints at the end."""

from __future__ import annotations

import sys

from . import Col, emit_json, fit_table, get_console, line, local_time, pct, plural, tokens, usd


def sessions_table(sessions: list[dict], as_json: bool) -> None:
    if as_json:
        emit_json("sessions", {"sessions": sessions})
        return

    if not sessions:
        line("No sessions yet. Start one with: agentmeter run claude")
        return
    cols = [
        Col("session"),
        Col("agent", drop=2),
        Col("repo", drop=6, shrink=True),
        Col("branch", drop=9, shrink=True),
        Col("started", drop=5),
        Col("req", True, drop=3),
        Col("input", True, drop=8),
        Col("cache r", True, drop=10),
        Col("cache w", True, drop=11),
        Col("output", True, drop=7),
        Col("cost", True),
        Col("cache hit", True, drop=4),
    ]
    rows = [
        [
            s["id"],
            s["agent"],
            s["repo"] or "—",
            s["branch"] or "—",
            local_time(s["started_at"]),
            str(s["requests"]),
            tokens(s["input_tokens"]),
            tokens(s["cache_read_tokens"]),
            tokens(s["cache_write_tokens"]),
            tokens(s["output_tokens"]),
            usd(s["cost_usd"], unpriced=bool(s.get("unpriced_requests"))),
            pct(s["cache_hit_rate"]),
        ]
        for s in sessions
    ]
    console = get_console()
    console.print(fit_table(cols, rows, console.width))
    for s in sessions:
        for share in s.get("plan_shares") or []:
            line(f"  {s['id']} used {_share_text(share)}")
    if any(s.get("unpriced_requests") for s in sessions):
        line(
            "* includes models with no price: estimated from their nearest known model or counted at a "
            "fallback rate. See: agentmeter prices explain MODEL (it shows the override to set)"
        )


def _share_text(share: dict) -> str:
    err = (
        f" (up to {share['error_pct']:.1f} points uncertain: it overlapped other sessions)"
        if share.get("error_pct")
        else ""
    )
    return f"{share['used_pct']:.1f} % of your {share['label']} plan window{err}"


def session_detail(session: dict, as_json: bool) -> None:
    if as_json:
        emit_json("session", session)
        return

    line(
        f"session {session['id']} · {session['agent']} · {session['repo'] or 'no repo'}"
        f" · {session['branch'] or ''}".rstrip(" ·")
    )
    started, ended = local_time(session["started_at"], True), local_time(session["ended_at"], True)
    if session["ended_at"] is None:
        ended = "(running)"
    elif ended[:10] == started[:10]:
        ended = ended[11:]  # the same day: the time is enough
    line(f"  {started} → {ended} · exit {session['exit_code'] if session['exit_code'] is not None else '—'}")
    line(
        f"  {plural(len(session['requests']), 'request')} · {usd(session['cost_usd'])}"
        f" · cache hit {pct(session['cache_hit_rate'])}"
    )
    for share in session.get("plan_shares") or []:
        line(f"  this session used {_share_text(share)}")
    cols = [
        Col("time"),
        Col("api", drop=6),
        Col("model", drop=2, shrink=True),
        Col("status", drop=3),
        Col("input", True, drop=5),
        Col("cache r", True, drop=8),
        Col("cache w", True, drop=9),
        Col("output", True, drop=4),
        Col("cost", True),
        Col("ttft", True, drop=7),
        Col("note", drop=1, shrink=True),
    ]
    rows = []
    for r in session["requests"]:
        model = r["model_used"] or r["model_requested"] or "—"
        if r["model_requested"] and r["model_used"] and r["model_requested"] != r["model_used"]:
            model = f"{r['model_requested']} → {r['model_used']}"
        rows.append(
            [
                local_time(r["started_at"], seconds=True)[11:],
                r["api"],
                model,
                r["status"],
                tokens(r["input_tokens"]),
                tokens(r["cache_read_tokens"]),
                tokens(r["cache_write_tokens"]),
                tokens(r["output_tokens"]),
                usd(r["cost_usd"], unpriced=r["price_source"] == "fallback"),
                "—" if r["ttft_ms"] is None else f"{r['ttft_ms']:.0f}ms",
                r["reason"] or "",
            ]
        )
    console = get_console()
    console.print(fit_table(cols, rows, console.width))


def run_summary(s: dict, to_stdout: bool = False) -> None:
    """One compact line on stderr after `agentmeter run` (stdout in the demo, to keep its order)."""
    parts = [f"{s['requests']} request{'s' if s['requests'] != 1 else ''}"]
    if s["requests"]:
        parts.append(
            f"in {tokens(s['input_tokens'])} · cache r {tokens(s['cache_read_tokens'])}"
            f" · cache w {tokens(s['cache_write_tokens'])} · out {tokens(s['output_tokens'])}"
        )
        parts.append(usd(s["cost_usd"], unpriced=bool(s.get("unpriced_requests"))))
        if s["cache_hit_rate"] is not None:
            parts.append(f"cache hit {pct(s['cache_hit_rate'])}")
    if s.get("downgrades"):
        parts.append(f"{s['downgrades']} downgraded")
    if s.get("refusals"):
        parts.append(f"{s['refusals']} refused")
    out = sys.stdout if to_stdout else sys.stderr
    text = f"agentmeter · {s['agent']} · " + " · ".join(parts) + f" · session {s['id']}"
    import shutil

    width = shutil.get_terminal_size((200, 24)).columns
    for least_useful in ("in ", "cache hit"):  # a narrow terminal: the token split goes first, never id or cost
        if len(text) > width and s["requests"]:
            parts = [p for p in parts if not p.startswith(least_useful)]
            text = f"agentmeter · {s['agent']} · " + " · ".join(parts) + f" · session {s['id']}"
    if len(text) > width:
        text = text.removeprefix("agentmeter · ")
    out.write(text + "\n")
    if s.get("requests") and s.get("unpriced_requests"):
        out.write(
            f"agentmeter · * {s['unpriced_requests']} request(s) of a model with no price, estimated: "
            "agentmeter prices explain MODEL shows how, and the override that prices it exactly\n"
        )
    out.flush()
