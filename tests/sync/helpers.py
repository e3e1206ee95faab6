"""A real collector on loopback, and client ledgers with known usage."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from aiohttp import web

from agentmeter.collector.app import create_app
from agentmeter.collector.store import open_store
from agentmeter.core.clock import SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.home.config import Config, Identity
from agentmeter.ledger import open_ledger
from agentmeter.ledger.access import DirectAccess
from agentmeter.sync.client import Target, sync_once
from conftest import LoopThread

DAY_MS = 86_400_000
BASE_MS = 1_795_000_000_000  # 2026-11-18, a fixed point so days are stable


class Collector:
    """The collector app on 127.0.0.1, restartable on the same port and database."""

    def __init__(self, db: Path, rate_per_minute: int = 6000, middlewares=(), **app_kw) -> None:
        self.db = db
        self.app_kw = app_kw  # more create_app keywords (clock, metrics_networks)
        self.rate = rate_per_minute
        self.middlewares = list(middlewares)
        self.loop = LoopThread()
        self.port = 0
        self.runner = None

    def start(self) -> Collector:
        async def go():
            app = create_app(self.db, rate_per_minute=self.rate, **self.app_kw)
            app.middlewares.extend(self.middlewares)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", self.port)
            await site.start()
            return runner, site._server.sockets[0].getsockname()[1]

        self.runner, self.port = self.loop.run(go())
        return self

    def stop(self) -> None:
        if self.runner is not None:
            self.loop.run(self.runner.cleanup())
            self.runner = None

    def close(self) -> None:
        self.stop()
        self.loop.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(
        self,
        developer: str,
        team: str | None = None,
        admin: bool = False,
        cost_center: str | None = None,
        role: str | None = None,
    ) -> str:
        store = open_store(self.db)
        try:
            return store.add_token(
                developer, team, admin or role == "admin", SystemClock().now_ms(), cost_center=cost_center, role=role
            )[1]
        finally:
            store.close()

    def totals(self) -> dict:
        store = open_store(self.db)
        try:
            return store.totals()
        finally:
            store.close()


def request(
    url: str,
    *,
    method: str = "GET",
    token: str | None = None,
    body: bytes | dict | list | None = None,
    headers: dict | None = None,
) -> tuple[int, dict | str, dict]:
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    h = {"Content-Type": "application/json", **(headers or {})}
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw, status, hdrs = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as exc:
        raw, status, hdrs = exc.read(), exc.code, dict(exc.headers)
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw.decode(), hdrs


class Client:
    """One developer machine: its own ledger file, identity and token."""

    def __init__(self, root: Path, developer: str, team: str | None = None, token: str | None = None) -> None:
        self.path = root / "ledger.db"
        root.mkdir(parents=True, exist_ok=True)
        self.config = Config(identity=Identity(developer=developer, team=team, cost_center="CC-1"))
        self.token = token
        self.n = 0
        ledger = open_ledger(self.path)
        ledger.close()

    def add_usage(
        self,
        count: int,
        *,
        agent: str = "claude",
        repo: str = "github.com/acme/app",
        day: int = 0,
        model: str = "claude-sonnet-4-5",
        cost: float = 0.25,
        session: str | None = None,
        cwd: str = "/home/dev/src/app",
    ) -> None:
        ledger = open_ledger(self.path)
        try:
            sid = session or f"s-{agent}-{day}"
            if ledger.get_session(sid) is None or ledger.get_session(sid)["id"] != sid:
                ledger.create_session(
                    {
                        "id": sid,
                        "token_hash": f"h-{self.path}-{sid}",
                        "agent": agent,
                        "repo": repo,
                        "branch": "main",
                        "cwd": cwd,
                        "started_at": BASE_MS + day * DAY_MS,
                        "developer": self.config.identity.developer,
                    }
                )
            for _ in range(count):
                self.n += 1
                ledger.insert_request(
                    RequestRecord(
                        request_id=f"{self.path}-{self.n}",
                        session_id=sid,
                        started_at_ms=BASE_MS + day * DAY_MS + self.n,
                        provider="anthropic",
                        api="messages",
                        method="POST",
                        path="/v1/messages",
                        model_requested=model,
                        model_used=model,
                        stream=True,
                        status="ok",
                        http_status=200,
                        usage=Usage(
                            input_tokens=100,
                            cache_read_tokens=1000,
                            cache_write_tokens=50,
                            cache_write_5m_tokens=50,
                            output_tokens=40,
                        ),
                        cost_usd=cost,
                        price_source="genai-prices",
                        agent=agent,
                        repo=repo,
                    )
                )
        finally:
            ledger.close()

    def sync(self, url: str, token: str | None = None) -> dict:
        access = DirectAccess(self.path)
        try:
            return sync_once(access, self.config, SystemClock(), target_=Target(url, token or self.token))
        finally:
            access.close()

    def totals(self) -> dict:
        ledger = open_ledger(self.path, readonly=True)
        try:
            row = ledger.conn.execute(
                "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(cost_usd), 0), "
                "COALESCE(SUM(output_tokens), 0) FROM usage_daily"
            ).fetchone()
            return {"requests": row[0], "cost_usd": row[1], "output_tokens": row[2]}
        finally:
            ledger.close()

    def state(self) -> dict:
        from agentmeter.ledger import sync as q

        ledger = open_ledger(self.path, readonly=True)
        try:
            return q.read_state(ledger.conn)
        finally:
            ledger.close()


def summed(clients: list[Client]) -> dict:
    out = {"requests": 0, "cost_usd": 0.0, "output_tokens": 0}
    for c in clients:
        for k, v in c.totals().items():
            out[k] += v
    return out


def assert_same(collector_totals: dict, expected: dict) -> None:
    assert collector_totals["requests"] == expected["requests"], (collector_totals, expected)
    assert collector_totals["output_tokens"] == expected["output_tokens"], (collector_totals, expected)
    assert abs(collector_totals["cost_usd"] - expected["cost_usd"]) < 1e-6, (collector_totals, expected)
