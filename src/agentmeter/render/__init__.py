"""The only module that prints: rich tables for people, versioned JSON envelopes for scripts.

Data goes to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from typing import Any

from ..core.clock import ms_to_iso

_SCHEMA_VERSION = 1


def envelope(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    return tidy({"schema": f"agentmeter.{name}/{_SCHEMA_VERSION}", **payload})


def tidy(value: Any) -> Any:
    """Floats as the number they stand for: sums of costs carry binary noise (0.1 + 0.2 is
    0.30000000000000004); 10 decimals keep every real digit of a cost and drop the noise."""
    if isinstance(value, float):
        return round(value, 10)
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [tidy(v) for v in value]
    return value


def emit_json(name: str, payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(envelope(name, payload), indent=2, default=str) + "\n")


def _console(stderr: bool = False):
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output has no terminal width: 200 unless COLUMNS says otherwise (rich reads it). Tables fit
    # themselves to the width (fit_table), so ids and money are never cut whatever it is.
    width = None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width,
                   no_color=bool(os.environ.get("NO_COLOR")) or None)


@dataclass(frozen=True)
class Col:
    """A table column. `drop`: 0 never dropped (ids, money); otherwise higher numbers go first when the
    terminal is narrow. `shrink`: may be cut short with … (free text such as a repo or a model)."""

    name: str
    right: bool = False
    drop: int = 0
    shrink: bool = False


_GAP = 2  # rich's default padding between columns, with box=None and pad_edge=False
_MIN_SHRUNK = 8


def fit_table(cols: list[Col], rows: list[list[str]], width: int, footer: list[str] | None = None, **table_kw):
    """A rich Table that fits `width` without wrapping a row: the least useful columns are dropped first, then
    free-text columns are shortened; the essential columns (drop=0) are never cut."""
    from rich.table import Table

    natural = [max([len(c.name)] + [len(r[i]) for r in rows + ([footer] if footer else [])])
               for i, c in enumerate(cols)]
    keep = list(range(len(cols)))

    def total(idx: list[int], widths: list[int]) -> int:
        return sum(widths[i] for i in idx) + _GAP * (len(idx) - 1)

    widths = list(natural)
    empty = {i for i, c in enumerate(cols) if c.drop and rows and not any(r[i].strip() not in ("", "—") for r in rows)}
    for i in sorted((i for i, c in enumerate(cols) if c.drop), key=lambda i: (i not in empty, -cols[i].drop)):
        if total(keep, widths) <= width:
            break
        shrunk = list(widths)
        over = total(keep, shrunk) - width
        for j in keep:  # shortening free text is better than losing a column, down to a readable width
            if cols[j].shrink and over > 0:
                cut = min(over, shrunk[j] - max(_MIN_SHRUNK, len(cols[j].name)))
                if cut > 0:
                    shrunk[j] -= cut
                    over -= cut
        if over <= 0 and all(shrunk[j] >= natural[j] - natural[j] // 2 for j in keep if cols[j].shrink):
            widths = shrunk
            break
        keep.remove(i)
    t = Table(box=None, pad_edge=False, header_style="bold", show_footer=bool(footer), **table_kw)
    for i in keep:
        c = cols[i]
        t.add_column(c.name, justify="right" if c.right else "left", no_wrap=True,
                     overflow="ellipsis" if c.shrink else "fold", max_width=widths[i] if c.shrink else None,
                     min_width=None if c.shrink else natural[i], footer=footer[i] if footer else "")
    for r in rows:
        t.add_row(*(r[i] for i in keep))
    return t


def local_time(iso_text: str | None, seconds: bool = False) -> str:
    """The one time format for people: local time with its zone (JSON keeps ISO 8601 UTC)."""
    if not iso_text:
        return "—"
    from datetime import datetime

    try:
        at = datetime.fromisoformat(iso_text.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso_text
    return at.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def error(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"agentmeter: {message}\n")
    if hint:
        sys.stderr.write(f"  hint: {hint}\n")


def info(message: str) -> None:
    sys.stderr.write(message + "\n")


def line(text: str) -> None:
    sys.stdout.write(text + "\n")


def usd(value: float | None, *, unpriced: bool = False) -> str:
    """Money for people: $0.0012, $1.23, $1,234 (JSON and CSV carry the exact value)."""
    if value is None:
        return "—"
    if value == 0:
        return "$0.00" + ("*" if unpriced else "")
    text = f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}" if abs(value) < 1000 else f"${value:,.0f}"
    return text + ("*" if unpriced else "")


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def tokens(n: int | None) -> str:
    n = int(n or 0)
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def exports(env: dict[str, str], comment: str | None = None) -> None:
    if comment:
        line(f"# {comment}")
    for key, value in env.items():
        line(f"export {key}={shlex.quote(value)}")


def proxy_status(info: dict, as_json: bool) -> None:
    if as_json:
        emit_json("proxy_status", info)
        return
    if info["running"]:
        line(f"agentmeter proxy: running (pid {info['pid']}) at {info['url']}")
        for name, url in (info.get("upstreams") or {}).items():
            line(f"  upstream {name:<9} {url}")
    else:
        line("agentmeter proxy: not running. Start it with: agentmeter proxy start")


def agents_table(rows: list[dict], as_json: bool) -> None:
    if as_json:
        emit_json("agents", {"agents": rows})
        return
    from rich.table import Table

    t = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("agent", "installed", "metering", "verified", "how"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], "yes" if r["installed"] else "no", r["metering"], r["verified"], r["how"])
    _console().print(t)
    line("live: metered and capped · byok: only with your own key · import: from its logs · none: not meterable")


def sessions_table(sessions: list[dict], as_json: bool) -> None:
    if as_json:
        emit_json("sessions", {"sessions": sessions})
        return

    if not sessions:
        line("No sessions yet. Start one with: agentmeter run claude")
        return
    cols = [Col("session"), Col("agent", drop=2), Col("repo", drop=6, shrink=True), Col("branch", drop=9, shrink=True),
            Col("started", drop=5), Col("req", True, drop=3), Col("input", True, drop=8), Col("cache r", True, drop=10),
            Col("cache w", True, drop=11), Col("output", True, drop=7), Col("cost", True),
            Col("cache hit", True, drop=4)]
    rows = [[s["id"], s["agent"], s["repo"] or "—", s["branch"] or "—", local_time(s["started_at"]),
             str(s["requests"]), tokens(s["input_tokens"]), tokens(s["cache_read_tokens"]),
             tokens(s["cache_write_tokens"]), tokens(s["output_tokens"]),
             usd(s["cost_usd"], unpriced=bool(s.get("unpriced_requests"))), pct(s["cache_hit_rate"])]
            for s in sessions]
    console = _console()
    console.print(fit_table(cols, rows, console.width))
    for s in sessions:
        for share in s.get("plan_shares") or []:
            line(f"  {s['id']} used {_share_text(share)}")
    if any(s.get("unpriced_requests") for s in sessions):
        line("* includes models with no price: estimated from their nearest known model or counted at a "
             "fallback rate. See: agentmeter prices explain MODEL (it shows the override to set)")


def _share_text(share: dict) -> str:
    err = (f" (up to {share['error_pct']:.1f} points uncertain: it overlapped other sessions)"
           if share.get("error_pct") else "")
    return f"{share['used_pct']:.1f} % of your {share['label']} plan window{err}"


def session_detail(session: dict, as_json: bool) -> None:
    if as_json:
        emit_json("session", session)
        return

    line(f"session {session['id']} · {session['agent']} · {session['repo'] or 'no repo'}"
         f" · {session['branch'] or ''}".rstrip(" ·"))
    started, ended = local_time(session["started_at"], True), local_time(session["ended_at"], True)
    if session["ended_at"] is None:
        ended = "(running)"
    elif ended[:10] == started[:10]:
        ended = ended[11:]  # the same day: the time is enough
    line(f"  {started} → {ended} · exit {session['exit_code'] if session['exit_code'] is not None else '—'}")
    line(f"  {plural(len(session['requests']), 'request')} · {usd(session['cost_usd'])}"
         f" · cache hit {pct(session['cache_hit_rate'])}")
    for share in session.get("plan_shares") or []:
        line(f"  this session used {_share_text(share)}")
    cols = [Col("time"), Col("api", drop=6), Col("model", drop=2, shrink=True), Col("status", drop=3),
            Col("input", True, drop=5), Col("cache r", True, drop=8), Col("cache w", True, drop=9),
            Col("output", True, drop=4), Col("cost", True), Col("ttft", True, drop=7), Col("note", drop=1, shrink=True)]
    rows = []
    for r in session["requests"]:
        model = r["model_used"] or r["model_requested"] or "—"
        if r["model_requested"] and r["model_used"] and r["model_requested"] != r["model_used"]:
            model = f"{r['model_requested']} → {r['model_used']}"
        rows.append([
            local_time(r["started_at"], seconds=True)[11:], r["api"], model, r["status"], tokens(r["input_tokens"]),
            tokens(r["cache_read_tokens"]), tokens(r["cache_write_tokens"]), tokens(r["output_tokens"]),
            usd(r["cost_usd"], unpriced=r["price_source"] == "fallback"),
            "—" if r["ttft_ms"] is None else f"{r['ttft_ms']:.0f}ms", r["reason"] or "",
        ])
    console = _console()
    console.print(fit_table(cols, rows, console.width))


def price_explanation(payload: dict, as_json: bool) -> None:
    if as_json:
        emit_json("price_explain", payload)
        return
    line(payload["why"])
    tier = payload.get("tier") or "standard"
    line(f"  rates ({tier}, USD per million tokens):")
    for key in ("input", "output", "cache_read", "cache_write", "cache_write_1h"):
        if payload.get(key) is not None:
            line(f"    {key:<15} ${payload[key]:,.4f}")
    if payload.get("long_context_threshold"):
        lc = payload.get("long_context") or {}
        line(f"  over {payload['long_context_threshold']:,} prompt tokens the whole request bills at "
             f"${lc.get('input', 0):,.4f} in / ${lc.get('output', 0):,.4f} out")
    for name, rates in (payload.get("tiers") or {}).items():
        src = f"  (correction: {rates['source']})" if rates.get("source") else ""
        line(f"  tier {name:<9} ${rates['input']:,.4f} in / ${rates['output']:,.4f} out{src}")
    for d in payload.get("dated") or []:
        line(f"  from {d['from'] or 'listing':<10} ${d['input']:,.4f} in / ${d['output']:,.4f} out")
    for c in payload.get("corrections") or []:
        when = f"prompt over {c['above']:,} tokens" if c.get("above") else f"tier {c.get('tier') or 'standard'}"
        line(f"  correction ({when}): ${c['input']:,.4f} in / ${c['output']:,.4f} out, from {c['source']}")
    for extra in ("matched_model", "source", "price_version"):
        if payload.get(extra):
            line(f"  {extra:<15} {payload[extra]}")
    data = payload.get("data") or {}
    if data:
        origin = data.get("url") or data.get("path") or "bundled with genai-prices"
        line(f"  price data      {data['source']}, {data['date']} (genai-prices {data['genai_prices_version']}; "
             f"{origin})")
        if data.get("problem"):
            line(f"  warning         cached price data not used: {data['problem']}")
    if payload.get("unpriced"):
        line("  * marks costs of unpriced models in summaries: estimated or counted at a fallback rate")
    if payload.get("override_hint"):
        line(f"  override        {payload['override_hint']}")


def prices_update_result(payload: dict, as_json: bool) -> None:
    if as_json:
        emit_json("prices_update", payload)
        return
    a, b = payload["after"], payload["before"]
    if payload.get("dry_run"):
        line(f"price data from {payload['source']} is valid: {a['models']} models (dry run: nothing cached)")
        return
    line(f"price data updated from {payload['source']}: {a['models']} models, dated {a['date']} "
         f"(was {b['source']} data of {b['date']})")
    line(payload["hint"])


def reprice_result(payload: dict, as_json: bool) -> None:
    if as_json:
        emit_json("reprice", payload)
        return
    verb = "would reprice" if payload.get("dry_run") else "repriced"
    line(f"{verb} {plural(payload['rows'], 'request')}; {payload['changed']} changed; "
         f"total {usd(payload['before_usd'])} → {usd(payload['after_usd'])}"
         + (" (dry run: nothing written)" if payload.get("dry_run") else ""))
    for m in payload.get("models") or []:
        line(f"  {m['model']}: {m['rows']} rows {usd(m['before_usd'])} → {usd(m['after_usd'])} ({m['source']})")


def iso(ms: int | None) -> str | None:
    return ms_to_iso(ms)


def run_summary(s: dict, to_stdout: bool = False) -> None:
    """One compact line on stderr after `agentmeter run` (stdout in the demo, to keep its order)."""
    parts = [f"{s['requests']} request{'s' if s['requests'] != 1 else ''}"]
    if s["requests"]:
        parts.append(f"in {tokens(s['input_tokens'])} · cache r {tokens(s['cache_read_tokens'])}"
                     f" · cache w {tokens(s['cache_write_tokens'])} · out {tokens(s['output_tokens'])}")
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
        out.write(f"agentmeter · * {s['unpriced_requests']} request(s) of a model with no price, estimated: "
                  "agentmeter prices explain MODEL shows how, and the override that prices it exactly\n")
    out.flush()


def doctor(checks: list[dict], as_json: bool) -> None:
    if as_json:
        emit_json("doctor", {"ok": not any(c["status"] == "fail" for c in checks), "checks": checks})
        return
    marks = {"ok": "✓", "warn": "!", "fail": "✗", "info": "·"}
    for c in checks:
        line(f"{marks[c['status']]} {c['name']:<16} {c['detail']}")
        if c["fix"] and c["status"] != "ok":
            line(f"  {'':<16} {'to install' if c['status'] == 'info' else 'fix'}: {c['fix']}")


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
    line(f"caps in {payload['timezone']} time · alert {t['alert_at']:.0%} · cheaper model {t['downgrade_at']:.0%}"
         f" · refuse {t['block_at']:.0%}")
    for w in payload["windows"]:
        cap = ("no cap" if w["cap_usd"] is None and not w["cap_tokens"]
               else usd(w["cap_usd"]) if w["cap_usd"] is not None else f"{w['cap_tokens']:,} tok")
        pct_text = f"{w['used_pct']:.0f}%" if w["used_pct"] is not None else ""
        who = f"  set by: {w['source']}" if w.get("source") else ""
        line(f"  {w['name']:<14} {_bar(w['used_pct'])} {usd(w['spent_usd']):>10} / {cap:<12} {pct_text:>5}"
             f"  {w['stage']}{who}")
    if payload.get("snoozed_until"):
        held = [w["name"] for w in payload["windows"] if w.get("source") and not w.get("snoozed")]
        line(f"snoozed until {payload['snoozed_until']} (refusals and downgrades paused"
             + (f"; team caps still apply: {', '.join(held)})" if held else ")"))
    if not any(w["cap_usd"] or w["cap_tokens"] for w in payload["windows"]):
        line("no caps set. Try: agentmeter budget set --daily 20 --monthly 300")


def budget_test(result: dict, as_json: bool) -> None:
    if as_json:
        emit_json("budget_test", result)
        return
    lines = ", ".join(f"{k}={v:g}" for k, v in (result.get("plan_lines") or {}).items())
    line(f"replayed {result['requests']} requests since {result['since']} against {result['caps'] or 'no caps'}"
         + (f" and plan-window lines {lines}" if lines else ""))
    fired_any = False
    for window, stages in result["stages"].items():
        if stages:
            fired_any = True
            line(f"  {window}: " + ", ".join(f"{s} at {when}" for s, when in stages.items()))
    if not fired_any:
        line("  no stage would have fired")
    line(f"refused requests: {result['refused']} in {len(result['refused_sessions'])} sessions; "
         f"downgraded: {result['downgraded']} in {len(result['downgraded_sessions'])} sessions")
    line(f"spend: {usd(result['actual_usd'])} actual → {usd(result['with_caps_usd'])} with these caps "
         f"(saved {usd(result['saved_usd'])})")
    w = result.get("worst") or {}
    if w:
        line(f"worst: {w['window']} at {w['used_pct']}% ({usd(w['spent_usd'])} of {usd(w['cap_usd'])})")


def snoozed(payload: dict, as_json: bool) -> None:
    if as_json:
        emit_json("snooze", payload)
        return
    prefix = "dry run: would snooze" if payload.get("dry_run") else "budget snoozed"
    line(f"{prefix} until {payload['snoozed_until']}: refusals and downgrades paused, alerts continue"
         if payload["snoozed_until"] else "snooze ended: caps apply again")
    if payload.get("team_caps_held"):
        line(f"team caps still apply (your team does not allow snoozing them): {', '.join(payload['team_caps_held'])}")


def budget_banner(w: dict, snoozed_until: int | None) -> None:
    what = {"alert": "heads-up", "downgrade": "easy turns use a cheaper model",
            "blocked": "requests are refused until it resets"}[w["stage"]]
    cap = usd(w["cap_usd"]) if w["cap_usd"] is not None else f"{w['cap_tokens']:,} tokens"
    spent = usd(w["spent_usd"]) if w["cap_usd"] is not None else f"{w['spent_tokens']:,}"
    extra = f" (snoozed until {iso(snoozed_until)})" if snoozed_until and w.get("snoozed", True) else ""
    source = f" [{w['source']} cap]" if w.get("source") else ""
    sys.stderr.write(f"agentmeter: {w['name']}{source} budget at {w['used_pct']:.0f}% ({spent} of {cap}): "
                     f"{what}{extra}\n")


_COLOURS = {"ok": "32", "alert": "33", "downgrade": "35", "blocked": "31"}


def colour_wanted(stream=None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    import os

    return bool((stream or sys.stdout).isatty()) and not os.environ.get("NO_COLOR")


def _paint(text: str, stage: str, on: bool) -> str:
    return f"\x1b[{_COLOURS.get(stage, '0')}m{text}\x1b[0m" if on else text


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


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    m = max(0, int(seconds // 60))
    if m >= 48 * 60:
        return f"{m // 1440}d{(m % 1440) // 60:02d}h"
    return f"{m // 60}h{m % 60:02d}m"


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
        out.append(head + _paint(f"{e['stage']:<9}", e["stage"], colour) + f" resets in {duration(e['resets_in_s'])}")
        out.append(f"      {pace_text(e)}"[:cols])
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
        cap = (usd(w["cap_usd"]) if w["cap_usd"] is not None
               else f"{w['cap_tokens']:,}t" if w["cap_tokens"] else "no cap")
        pct_text = f"{w['used_pct']:.0f}%" if w["used_pct"] is not None else ""
        head = f"{w['name']:<5} {burndown_bar(w['used_pct'], payload['thresholds'], bar_w)} " \
               f"{usd(w['spent_usd']):>9} / {cap:<8} {pct_text:>4} "
        source = w.get("cap_source")
        out.append((head + _paint(f"{w['stage']:<9}", w["stage"], colour)
                    + (f" {source} cap" if source and source != "personal" else "")).rstrip())
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
        out.append(f"      bar: █ spent · a alert {t['alert_at']:.0%} · d cheaper model {t['downgrade_at']:.0%}"
                   f" · | refusal {t['block_at']:.0%}"[:cols])
    if payload.get("empty"):
        out.append("no usage recorded yet. Next: agentmeter run claude (or codex, …) to meter one;")
        out.append("  agentmeter demo for a tour with no key; agentmeter import claude for past use")
        if not any(w["cap_usd"] or w["cap_tokens"] for w in payload["windows"]):
            out.append("set a cap: agentmeter budget set --daily 20 --monthly 300")
    out += plan_lines(payload.get("plan") or [], cols, colour)
    today = payload["today"]
    out.append(f"today: {plural(len(today['sessions']), 'session')} · {plural(today['requests'], 'request')} · "
               f"{usd(today['spent_usd'])}")
    shown = 8
    for s in today["sessions"][:shown]:
        hit = pct(s["cache_hit_rate"])
        flag = "  ⚠ low cache hit rate" if s["low_cache"] else ""
        mark = "●" if s.get("running") else " "
        cost = ("refused" if s.get("refused") and s["refused"] == s["requests"] else usd(s["cost_usd"]))
        if s.get("refused") and s["refused"] != s["requests"]:
            flag = f"  {s['refused']} refused" + flag
        out.append(f" {mark}{s['id']:<12} {s['agent']:<8} {(s['repo'] or '—')[:32]:<32} {cost:>9}"
                   f"  cache {hit:>4}{flag}"[:cols])
    if len(today["sessions"]) > shown:
        out.append(f"  … and {len(today['sessions']) - shown} more (agentmeter sessions --since today)")
    if any(s.get("running") for s in today["sessions"][:shown]):
        out.append("  ● running now")
    if payload["by_agent"]:
        out.append("this month by agent: " + " · ".join(
            f"{a['agent']} {usd(a['spent_usd'])} ({pct(a['share'])})" for a in payload["by_agent"]))
    sub = payload["subscription"]
    if sub["api_equivalent_usd"]:
        out.append(f"subscription use (API-equivalent, not billed): {usd(sub['api_equivalent_usd'])}"
                   f" · billed: {usd(sub['billed_usd'])}")
    for u in payload["unpriced_models"]:
        out.append(f"unpriced: {u['provider']}:{u['model']} · {u['requests']} requests counted at a fallback "
                   f"{usd(u['fallback_usd'])} · {u['explain']}")
    if payload.get("snoozed_until"):
        out.append(f"snoozed until {payload['snoozed_until']}: refusals and downgrades paused")
    if payload.get("prices", {}).get("reprice_suggested"):
        out.append(f"prices changed ({payload['prices']['reprice_suggested']}): run agentmeter reprice")
    out.append(f"sync: {payload['sync']['state']}")
    sys.stdout.write("\n".join(out) + "\n")
