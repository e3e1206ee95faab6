"""The `sync` part of `agentmeter status`: one line, read from sync_state with plain sqlite3 (the fast path:
no aiohttp, no keyring, no network)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.clock import ms_to_iso
from ..home.config import Config
from ..ledger import sync as q
from .caps import cap_sources, effective_budget

if TYPE_CHECKING:
    from ..ledger.read import Connection


def _url(config: Config) -> str:
    return (os.environ.get("AGENTMETER_COLLECTOR_URL") or config.sync.collector or "").strip().rstrip("/")


def _ago(ms: int, now_ms: int) -> str:
    s = max(0, (now_ms - ms) // 1000)
    if s < 90:
        return "just now"
    if s < 5400:
        return f"{s // 60} min ago"
    if s < 172800:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"


def _otlp(config: Config) -> str | None:
    """The OTLP metrics endpoint from config or the OTEL_EXPORTER_OTLP_* variables (no SDK import; not even
    sync/otel.py when nothing names an endpoint: `status` runs on every prompt refresh)."""
    if not config.sync.otlp_endpoint and not any(
        os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        return None
    from .otel import target

    where = target(config)
    return where.endpoint if where else None


def sync_status(conn: Connection | None, config: Config, now_ms: int, tz) -> dict[str, Any]:
    url = _url(config)
    st = q.read_state(conn) if conn is not None else {}
    caps = q.team_caps(conn) if conn is not None else {}
    sources = {k: v for k, v in cap_sources(config, caps).items() if v != "personal"}
    out: dict[str, Any] = {
        "configured": bool(url),
        "collector": url or None,
        "otlp_endpoint": _otlp(config),
        "last_push_at": ms_to_iso(int(st[q.LAST_PUSH_AT])) if st.get(q.LAST_PUSH_AT) else None,
        "pending": int(st.get(q.PENDING) or 0),
        "failures": int(st.get(q.FAILURES) or 0),
        "failing_since": ms_to_iso(int(st[q.FAILING_SINCE])) if st.get(q.FAILING_SINCE) else None,
        "next_attempt_at": ms_to_iso(int(st[q.NEXT_ATTEMPT_AT])) if st.get(q.NEXT_ATTEMPT_AT) else None,
        "last_error": st.get(q.LAST_ERROR),
        "team_caps": caps or None,
        "caps_from_collector": sources,
    }
    if not url:
        out["state"] = "not configured"
    elif st.get(q.FAILING_SINCE):
        since = datetime.fromtimestamp(int(st[q.FAILING_SINCE]) / 1000, tz).strftime("%a %H:%M")
        kind = (st.get(q.LAST_ERROR) or "").split(":", 1)[0] or "failing"
        what = {
            "unreachable": "collector unreachable",
            "token": "collector refused the token",
            "rate_limited": "collector rate limiting",
        }.get(kind, f"push failing ({kind})")
        out["state"] = f"{what} since {since}; {out['pending']} rows queued, retrying in the background"
    elif st.get(q.LAST_PUSH_AT):
        out["state"] = f"ok, last push {_ago(int(st[q.LAST_PUSH_AT]), now_ms)}"
    else:
        out["state"] = "not pushed yet"
    if sources:
        eff = effective_budget(config, caps).caps
        parts = []
        for name, src in sorted(sources.items()):
            value = getattr(eff, name)
            shown = f"${value:,.2f}" if name.endswith("_usd") else f"{value:,} tokens"
            parts.append(f"{name.split('_')[0]} {shown} ({src})")
        out["state"] += "; stricter caps from the collector: " + ", ".join(parts)
    return out
