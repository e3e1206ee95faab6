"""`agentmeter top` (also `agentmeter status --watch`): a full-screen view that refreshes as requests land.

Cheap when idle: it never re-reads the ledger on a timer. Once a second it stats three files (the ledger,
its WAL and config.toml) — every committed request changes the WAL's size or mtime — and rebuilds the view
only when one changed, or every REFRESH_S anyway so that countdowns and paces move on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..core.clock import Clock

POLL_S = 1.0
REFRESH_S = 30.0
BURN_WINDOW_MS = 15 * 60 * 1000


def fingerprint(ledger: Path, config_file: Path) -> tuple:
    out = []
    for p in (ledger, Path(f"{ledger}-wal"), config_file):
        try:
            st = os.stat(p)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def running_sessions(ledger: Path, now_ms: int) -> list[dict]:
    """Sessions not ended that saw a request in the last day, with their burn over the last 15 minutes."""
    from ..ledger.activity import open_sessions_activity

    rows = open_sessions_activity(ledger, since_ms=now_ms - 86_400_000, recent_ms=now_ms - BURN_WINDOW_MS)
    return [
        {
            "id": r["id"],
            "agent": r["agent"],
            "repo": r["repo"],
            "requests": r["requests"],
            "cost_usd": float(r["cost"]),
            "burn_usd_per_h": float(r["recent"]) * 3_600_000 / BURN_WINDOW_MS,
            "idle_s": max(0, (now_ms - r["last_at"]) // 1000),
        }
        for r in rows
    ]


def view(load_config: Callable, clock: Clock, ledger: Path) -> dict:
    from .status import build_status

    payload = build_status(load_config(), clock)
    payload["running"] = running_sessions(ledger, clock.now_ms())
    return payload


def watch(
    build: Callable[[], dict],
    show: Callable[[dict], None],
    changed: Callable[[], tuple],
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
    *,
    stop: Callable[[], bool] = lambda: False,
    poll_s: float = POLL_S,
    refresh_s: float = REFRESH_S,
) -> int:
    """The loop, with its effects passed in. Returns how many times the view was built."""
    seen = changed()
    show(build())
    built, last = 1, monotonic()
    while not stop():
        sleep(poll_s)
        now_fp = changed()
        if now_fp != seen or monotonic() - last >= refresh_s:
            seen = now_fp
            show(build())
            built, last = built + 1, monotonic()
    return built
