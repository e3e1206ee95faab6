"""The daemon's parts, built once, in order, before the app serves (the composition root).

One request's path through them: route (app.py, route.py) → preflight (credentials, upstream, budget,
rewrite) → relay (HTTP, or websocket.py) → metering (record, price, commit) → alerts. Each part is handed
the parts it calls at construction; nothing is wired in later and nothing calls back up the path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import tzinfo
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ..core.clock import Clock
from ..home.config import Config
from ..ledger import LedgerWriter, open_ledger
from ..ledger import journal as journal_files
from ..ledger.store import SpendTotals
from .alerts import Alerts, Tasks
from .bodies import BodyGate
from .enforce import Enforcer
from .metering import LedgerHealth, Metering
from .preflight import Preflight
from .relay import Relay
from .sessions import KeyRing, KeySource, Sessions
from .websocket import WebSockets

log = logging.getLogger("agentmeter.proxy")


class ProxyState:
    """Everything the proxy shares across requests. Built inside the event loop (the HTTP client needs one),
    by the daemon or a test, and handed to app.create_app; closed by the app's cleanup."""

    def __init__(
        self,
        config: Config,
        ledger_path: Path,
        clock: Clock,
        *,
        control_token: str,
        keys: dict[str, str | None] | None = None,
        key_source: KeySource | None = None,
        key_stamp: Callable[[], object] | None = None,
        tz: tzinfo | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.ledger_path = ledger_path
        self.clock = clock
        self.tz = tz
        self.control_token = control_token
        self.started_ms = clock.now_ms()
        self.port: int | None = None  # set once the daemon listens
        self.totals = SpendTotals(tz)
        self.writer = LedgerWriter(ledger_path, tz=tz, totals=self.totals).start()
        self._recover_journal()
        self.journal = journal_files.Journal(ledger_path, first=journal_files.next_number(ledger_path))
        self.reader = open_ledger(ledger_path, readonly=True, tz=tz)
        self.health = LedgerHealth(self.writer)
        # Re-read for every new session (first when `keys set` ran, else behind it): `keys set` needs no restart.
        self.keys = KeyRing(keys, key_source, key_stamp)
        self.sessions = Sessions(self.reader, self.writer, clock, self.keys)
        self.enforcer = Enforcer(config, self.reader, self.totals, tz, clock, config_path)
        self.tasks = Tasks()
        self.bodies = BodyGate()
        self.http = aiohttp.ClientSession(
            auto_decompress=False,
            connector=aiohttp.TCPConnector(limit=256, limit_per_host=128, keepalive_timeout=60),
            # No total timeout: agent streams run for many minutes (wire-protocols 7.4).
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
        self.alerts = Alerts(config, clock, self.reader, self.writer, self.enforcer, self.http, self.tasks)
        self.metering = Metering(config, self.writer, self.journal, self.enforcer, self.alerts)
        self.preflight = Preflight(
            config,
            clock,
            tz,
            self.keys,
            self.sessions,
            self.enforcer,
            self.metering,
            self.alerts,
            self.bodies,
            self.health,
        )
        self.relay = Relay(self.http, self.metering, self.alerts, self.bodies, clock)
        self.websockets = WebSockets(self.http, self.preflight, self.metering, clock)

    def _recover_journal(self) -> None:
        """Requests a killed daemon was relaying (its journal lines without a row) become `partial` rows."""
        segments, lines = journal_files.leftover(self.ledger_path)
        if lines:
            try:
                recovered = self.writer.submit(lambda lg: lg.recover_journal(lines)).result(30)
            except Exception as exc:  # kept for the next start; this one relays all the same
                log.error("journal recovery failed, kept for the next start: %s: %s", type(exc).__name__, exc)
                return
            self.writer.recovered += len(recovered)
            if recovered:
                log.warning(
                    "%d response(s) were being relayed when the proxy last stopped; recorded as partial", len(recovered)
                )
        for seg in segments:
            seg.unlink(missing_ok=True)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Background work the daemon owns (sync, alerts): kept referenced, cancelled at shutdown."""
        self.tasks.spawn(coro)

    async def close(self) -> None:
        self.tasks.cancel_all()
        await self.http.close()
        self.bodies.close()
        self.reader.close()
        await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        self.journal.close()


STATE = web.AppKey("state", ProxyState)
