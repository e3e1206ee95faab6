"""The daemon's background push: a small periodic task, off the request path.

It sleeps between attempts (`[sync] interval_seconds`, or until the backoff ends), does the work in a
thread (HTTP and SQLite reads), and writes through the daemon's one ledger writer. A failure is recorded
in the ledger for `status` to show in one line; it never reaches the developer's terminal.
"""

from __future__ import annotations

import asyncio
import logging

from ..ledger import sync as q
from ..ledger.access import WriterAccess
from . import client

log = logging.getLogger("agentmeter.sync")
FIRST_DELAY_S = 5.0


def wanted(config) -> bool:
    from . import otel

    return bool(client.collector_url(config) or otel.configured(config))


def start(state) -> None:
    """Called from the proxy app's start-up: spawns the loop only when a collector or OTLP endpoint is set."""
    if wanted(state.config):
        state.spawn(run_periodic(state))


def _cycle(state) -> dict | None:
    from . import otel

    access = WriterAccess(state.ledger_path, state.writer, tz=state.tz)
    try:
        st = access.read(q.read_state)
        result = None
        now = state.clock.now_ms()
        if client.collector_url(state.config) and client.due(st, now):
            result = client.sync_once(access, state.config, state.clock, tz=state.tz)
            if result.get("error"):
                log.info("sync: %s (retrying at %s)", result["error"]["message"], result.get("next_attempt_at"))
        if otel.configured(state.config):
            got = otel.export_once(access, state.config, state.clock)
            if got.get("status") not in ("ok", "not configured"):
                log.info("otel export: %s", got.get("error") or got.get("reason"))
        caps = access.read(q.team_caps)
    finally:
        access.close()
    if state.enforcer is not None:
        state.enforcer.team_caps = caps
    return result


def _sleep_s(state) -> float:
    interval = float(state.config.sync.interval_seconds)
    try:
        access = WriterAccess(state.ledger_path, state.writer, tz=state.tz)
        try:
            st = access.read(q.read_state)
        finally:
            access.close()
    except Exception:
        return interval
    wait = (int(st.get(q.NEXT_ATTEMPT_AT) or 0) - state.clock.now_ms()) / 1000
    return max(1.0, min(interval, wait)) if wait > 0 else interval


async def run_periodic(state, first_delay_s: float | None = None) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(FIRST_DELAY_S if first_delay_s is None else first_delay_s)
    while True:
        try:
            await loop.run_in_executor(None, _cycle, state)
            wait = await loop.run_in_executor(None, _sleep_s, state)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must never take the proxy down
            log.error("background sync failed: %s: %s", type(exc).__name__, exc)
            wait = float(state.config.sync.interval_seconds)
        await asyncio.sleep(wait)
