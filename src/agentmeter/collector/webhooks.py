"""Sending team alerts: in the background, bounded (a timeout per attempt, a few attempts), and never
logging the webhook URL in full (its path is the secret for Slack-style hooks)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

log = logging.getLogger("agentmeter.collector.alerts")
TIMEOUT_S = 5.0
ATTEMPTS = 3
BACKOFF_S = (0.5, 2.0)  # between attempts 1→2 and 2→3


def redact(url: str) -> str:
    """scheme://host/… : enough to tell hooks apart, nothing that lets anyone post to one."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid url)"
    if not parts.scheme or not parts.hostname:
        return "(invalid url)"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


def valid(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def deliver(
    session,
    url: str,
    body: dict,
    *,
    attempts: int = ATTEMPTS,
    timeout_s: float = TIMEOUT_S,
    backoff_s: tuple[float, ...] = BACKOFF_S,
) -> tuple[bool, int]:
    """POST the JSON; (delivered, attempts made). Retries timeouts, connection errors, 429 and 5xx."""
    import aiohttp

    for n in range(1, attempts + 1):
        try:
            async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
                if 200 <= r.status < 300:
                    return True, n
                if r.status != 429 and r.status < 500:
                    log.warning("alert webhook %s refused it (%d); not retried", redact(url), r.status)
                    return False, n
                why = f"HTTP {r.status}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            why = type(exc).__name__
        if n < attempts:
            await asyncio.sleep(backoff_s[min(n - 1, len(backoff_s) - 1)])
    log.warning("alert webhook %s failed after %d attempts (%s)", redact(url), attempts, why)
    return False, attempts


class AlertRunner:
    """The collector's background alert work: evaluate a team after its pushes (coalesced: one evaluation
    queued per team at a time), check the digests every `digest_check_s`, and deliver. A push never waits."""

    def __init__(self, collector, digest_check_s: float | None) -> None:
        self.c = collector
        self.digest_check_s = digest_check_s
        self.session = None
        self._queued: set[str] = set()
        self._tasks: set[asyncio.Task] = set()

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)  # noqa: TID251 (the collector's helper: referenced in self._tasks)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession()
        if self.digest_check_s:
            self._spawn(self._digest_loop())

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=TIMEOUT_S)
        if self.session is not None:
            await self.session.close()

    def after_push(self, team: str | None, developer: str | None = None) -> None:
        key = f"{team}\0{developer or ''}"
        if not team or key in self._queued or self.session is None:
            return
        self._queued.add(key)
        self._spawn(self._evaluate(team, developer, key))

    async def _evaluate(self, team: str, developer: str | None, key: str) -> None:
        from . import alerts

        self._queued.discard(key)  # a push from now on asks again (the claims keep each alert to one)
        try:
            messages = await self.c.db(alerts.evaluate, self.c.store, team, self.c.clock.now(), developer)
        except Exception as exc:  # alerting must never take the collector down
            log.error("alert evaluation for team %s failed: %s: %s", team, type(exc).__name__, exc)
            return
        await self.send(messages)

    async def send(self, messages) -> None:
        from . import alerts

        for m in messages:
            ok, n = await deliver(self.session, m.url, m.body)
            log.info(
                "team %s %s alert (%s %s) %s to %s",
                m.team,
                m.kind,
                m.win,
                m.threshold,
                "delivered" if ok else "not delivered",
                redact(m.url),
            )
            await self.c.db(alerts.mark, self.c.store, m, ok, n, self.c.clock.now_ms())

    async def _digest_loop(self) -> None:
        from . import alerts

        while True:
            try:
                await self.send(await self.c.db(alerts.due_digests, self.c.store, self.c.clock.now()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("digest check failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.digest_check_s)
