"""The collector's aiohttp app: authenticated pushes, team caps, reports, FOCUS export and the dashboard.

Every answer that is not the dashboard is JSON, errors included: `{"error": …, "message": …, "field": …}`.
Store calls run on executor threads, so the event loop never waits on the database: writes on `db` (one
thread on SQLite, whose one writer would only queue; the pool's size on PostgreSQL), reads that scan many
rows (reports, the dashboard, the export) on `read`, so a long report never holds a push back.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..core.clock import Clock, SystemClock
from . import audit, chargeback, dashboard, engine, focus, metrics, overview, roles, streaming, validate, wallet
from .store import REPORT_BY, CollectorStore, open_store
from .webhooks import AlertRunner

log = logging.getLogger("agentmeter.collector")
MAX_BODY = 1024 * 1024
RATE_PER_MINUTE = 60


class RateLimiter:
    """A token bucket per collector token: `per_minute` requests, refilled continuously."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float | None:
        """None when allowed; else the seconds until the next request would be."""
        now = self.clock.monotonic()
        level, last = self._buckets.get(key, (self.capacity, now))
        level = min(self.capacity, level + (now - last) * self.rate)
        if level < 1.0:
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate
        self._buckets[key] = (level - 1.0, now)
        return None


class Collector:
    def __init__(
        self, db_path: Path | str, clock: Clock, rate_per_minute: int, max_body: int, metrics_networks: tuple = ()
    ) -> None:
        self.db_path = db_path if engine.is_postgres(db_path) else Path(db_path)
        self.metrics_networks = metrics_networks
        self.max_body = max_body
        self.clock = clock
        self.limiter = RateLimiter(rate_per_minute, clock)
        writers = engine.POOL_MAX // 2 if engine.is_postgres(db_path) else 1
        self.executor = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="agentmeter-collector-db")
        self.read_executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="agentmeter-collector-read")
        self.store: CollectorStore | None = None
        self.alerts: AlertRunner | None = None

    async def db(self, fn, *args):
        """Run a store call that writes (or is quick) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def read(self, fn, *args):
        """Run a store call that only reads, however long, beside the writes."""
        return await asyncio.get_running_loop().run_in_executor(self.read_executor, fn, *args)


COLLECTOR = web.AppKey("collector", Collector)


def error(status: int, code: str, message: str, field: str | None = None, headers=None) -> web.Response:
    body: dict[str, Any] = {"error": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)


def create_app(
    db_path: Path | str,
    *,
    clock: Clock | None = None,
    rate_per_minute: int = RATE_PER_MINUTE,
    max_body: int = MAX_BODY,
    metrics_networks: tuple = (),
    digest_check_s: float | None = 60.0,
) -> web.Application:
    """`metrics_networks`: ip_network objects whose clients may scrape /metrics without a token."""
    app = web.Application(client_max_size=max_body, middlewares=[json_errors])
    app[COLLECTOR] = Collector(db_path, clock or SystemClock(), rate_per_minute, max_body, tuple(metrics_networks))
    app[COLLECTOR].alerts = AlertRunner(app[COLLECTOR], digest_check_s)
    app.cleanup_ctx.append(_resources)
    app.router.add_get("/v1/health", health)
    app.router.add_post("/v1/push", push)
    app.router.add_get("/v1/caps", get_caps)
    app.router.add_put("/v1/caps", put_caps)
    app.router.add_get("/v1/report", report)
    app.router.add_get("/v1/export/focus", export_focus)
    app.router.add_get("/v1/audit", audit_log)
    app.router.add_get("/v1/plan-windows", plan_windows)
    app.router.add_get("/v1/export/audit", export_audit)
    app.router.add_get("/dashboard", dashboard_page)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/", root)
    return app


async def _resources(app: web.Application):
    c = app[COLLECTOR]
    c.store = await c.db(open_store, c.db_path)
    await c.alerts.start()
    yield
    await c.alerts.close()
    c.read_executor.shutdown(wait=True)
    await c.db(c.store.close)
    c.executor.shutdown(wait=True)


class AccessLog(AbstractAccessLogger):
    """Path without the query string: the dashboard accepts ?token=, which must never reach a log."""

    def log(self, request, response, time):
        self.logger.info(
            "%s %s %s %s %.1fms", request.remote, request.method, request.path, response.status, time * 1000
        )


# -- auth -------------------------------------------------------------------------------------------------


async def authorize(request: web.Request, *, admin: bool = False, allow_query: bool = False):
    """(who, None) or (None, the error response). Rate limited per token once the token is known good. The
    token's role must grant the route's permission (roles.ROUTES; a route not listed there needs admin);
    `who["grant"]` then says which teams it may see."""
    c = request.app[COLLECTOR]
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not token and allow_query:
        token = request.query.get("token", "")
    if not token:
        return None, error(
            401,
            "unauthorized",
            "no bearer token: send Authorization: Bearer <token> (issued by: agentmeter collector token add)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    who = await c.read(c.store.authenticate, token)  # beside the writes: a push's check never queues behind one
    if who is None:
        return None, error(401, "unauthorized", "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    route = request.match_info.route
    method = "GET" if request.method == "HEAD" else request.method  # aiohttp serves HEAD with each GET
    permission = roles.ROUTES.get((method, getattr(route.resource, "canonical", "")), "admin" if admin else "unlisted")
    try:
        who["grant"] = roles.check(who, permission or "admin")
    except roles.Denied as exc:
        return None, error(403, "forbidden", exc.message)
    wait = c.limiter.take(who["id"])
    if wait is not None:
        return None, error(
            429,
            "rate_limited",
            f"too many requests for this token; retry in {wait:.0f}s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    return who, None


async def read_json(request: web.Request) -> tuple[Any, web.Response | None]:
    limit = request.app[COLLECTOR].max_body
    if request.content_length is not None and request.content_length > limit:
        return None, error(413, "too_large", f"request body is over {limit // 1024} KiB; push in smaller batches")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None, error(413, "too_large", f"request body is over {limit // 1024} KiB; push in smaller batches")
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError):
        return None, error(400, "bad_json", "the body is not valid JSON")
    except RecursionError:  # [[[[…]]]] nested deeper than the parser goes
        return None, error(400, "bad_json", "the body is nested too deeply")


# -- handlers ---------------------------------------------------------------------------------------------


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/dashboard")


async def health(request: web.Request) -> web.Response:
    c = request.app[COLLECTOR]
    return web.json_response({"ok": True, "collector_id": await c.db(c.store.collector_id)})


async def push(request: web.Request) -> web.Response:
    who, denied = await authorize(request)
    if denied is not None:
        return denied
    body, bad = await read_json(request)
    if bad is not None:
        return bad
    try:
        p = validate.push(body)
    except validate.Invalid as exc:
        return error(422, "invalid", exc.message, exc.field)
    except (TypeError, ValueError, RecursionError) as exc:  # a shape the checks did not foresee: still the body's fault
        return error(400, "bad_body", f"the push could not be read: {type(exc).__name__}")
    c = request.app[COLLECTOR]
    counts = await c.db(
        c.store.push,
        who,
        p["device_id"],
        p["rollups"],
        p["sessions"],
        p["deleted"],
        c.clock.now_ms(),
        p["plan_windows"],
    )
    # Team and member alerts in the background: the push never waits on a webhook.
    c.alerts.after_push(who.get("team"), who.get("developer"))
    if p["rejected"]:
        log.warning(
            "push from %s: %d item(s) rejected, first: %s: %s",
            who["developer"],
            len(p["rejected"]),
            p["rejected"][0]["field"],
            p["rejected"][0]["message"],
        )
    return web.json_response(
        {"accepted": counts, "rejected": p["rejected"], "collector_id": await c.db(c.store.collector_id)}
    )


async def get_caps(request: web.Request) -> web.Response:
    who, denied = await authorize(request)
    if denied is not None:
        return denied
    c = request.app[COLLECTOR]

    device = request.query.get("device_id", "")[:64]  # whose spend the client will add live (sync/wallet.py)
    now_ms = c.clock.now_ms()

    def read():
        team = who["team"]  # the token's, set by the admin; never what a push claimed
        pooled = wallet.publish(c.store, team, who["developer"], device, c.clock.now().date(), now_ms)
        return (
            team,
            c.store.caps("team", team),
            c.store.caps("developer", who["developer"]),
            pooled,
            c.store.collector_id(),
        )

    team, team_caps, dev_caps, pooled, cid = await c.db(read)
    caps = {"team": team_caps, "developer": dev_caps}
    if pooled is not None:
        caps["wallet"] = pooled
    return web.json_response(
        {"schema": "agentmeter.caps/1", "collector_id": cid, "developer": who["developer"], "team": team, "caps": caps}
    )


async def put_caps(request: web.Request) -> web.Response:
    who, denied = await authorize(request, admin=True)
    if denied is not None:
        return denied
    body, bad = await read_json(request)
    if bad is not None:
        return bad
    try:
        spec = validate.caps(body)
    except validate.Invalid as exc:
        return error(422, "invalid", exc.message, exc.field)
    c = request.app[COLLECTOR]
    if not await c.db(audit.may_set_caps, c.store, who["grant"], spec["scope"], spec["name"]):
        return error(
            403,
            "forbidden",
            f"a lead token may change the caps of team {who['grant'].team} and its members only",
            "name",
        )
    got = await c.db(
        audit.set_caps, c.store, audit.token_actor(who), spec["scope"], spec["name"], spec, c.clock.now_ms()
    )
    return web.json_response({"scope": spec["scope"], "name": spec["name"], "caps": got})


def _period(request: web.Request) -> tuple[str | None, str | None, web.Response | None]:
    since, until = request.query.get("since"), request.query.get("until")
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                return None, None, error(400, "bad_query", f"{name} must be a date YYYY-MM-DD", name)
    return since, until, None


# Groupings read from the session line items (what a session carries: its sub-agents, its end commit).
SESSION_BY = {"subagent": chargeback.report_by_subagent, "commit": chargeback.report_by_commit}


def build_report(
    store: CollectorStore, by: str, since: str | None, until: str | None, team: str | None = None
) -> dict[str, Any]:
    """`team`: only that team's rows (a lead's view); None: every team."""
    if by.startswith("tag:"):
        rows = chargeback.report_by_tag(store, by[4:], since, until, team=team)
    elif by in SESSION_BY:  # from the session line items, like tag:KEY
        rows = SESSION_BY[by](store, since, until, team=team)
    else:
        rows = store.report(by, since, until, team=team)
    out = {"by": by, "since": since, "until": until, "rows": rows, "totals": store.totals(since, until, team=team)}
    if team is not None:
        out["team"] = team
    return out


async def report(request: web.Request) -> web.Response:
    who, denied = await authorize(request, admin=True)
    if denied is not None:
        return denied
    by = request.query.get("by", "developer")
    if by not in REPORT_BY and by not in SESSION_BY and not (by.startswith("tag:") and len(by) > 4):
        return error(400, "bad_query", f"by must be one of: {', '.join([*REPORT_BY, *SESSION_BY])}, tag:KEY", "by")
    since, until, bad = _period(request)
    if bad is not None:
        return bad
    c = request.app[COLLECTOR]
    got = await c.read(build_report, c.store, by, since, until, who["grant"].team)
    return web.json_response({"schema": "agentmeter.collector_report/1", **got})


async def export_focus(request: web.Request) -> web.Response:
    who, denied = await authorize(request, admin=True)
    if denied is not None:
        return denied
    since, until, bad = _period(request)
    if bad is not None:
        return bad
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "json"):
        return error(400, "bad_query", "format must be csv or json", "format")
    c = request.app[COLLECTOR]

    def produce(emit) -> None:  # on a read thread: rows streamed from the database, written as they come
        out = streaming.ChunkWriter(emit)
        rows = focus.rows(c.store.focus_source(since, until, team=who["grant"].team))
        if fmt == "json":
            streaming.write_json_rows(
                out,
                {"schema": "agentmeter.focus/1", "focus_version": focus.FOCUS_VERSION, "columns": list(focus.COLUMNS)},
                rows,
            )
        else:
            focus.write_csv(rows, out)
        out.flush()

    if fmt == "json":
        return await streaming.respond(request, c.read_executor, produce, content_type="application/json")
    return await streaming.respond(
        request,
        c.read_executor,
        produce,
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="agentmeter-focus.csv"'},
    )


async def plan_windows(request: web.Request) -> web.Response:
    """The subscription plan windows the team's clients last pushed (issue 18 item 3), as JSON: a lead's team,
    or every team for finance and admin. `?team=` narrows an all-teams view to one team."""
    who, denied = await authorize(request, admin=True)
    if denied is not None:
        return denied
    team = who["grant"].team
    asked = request.query.get("team")
    if asked is not None:
        if team is not None and asked != team:
            return error(403, "forbidden", f"a lead token may read the plan windows of team {team} only", "team")
        team = asked
    c = request.app[COLLECTOR]
    now_s = c.clock.now_ms() // 1000
    rows = await c.read(c.store.plan_windows, now_s, team)
    return web.json_response(
        {
            "schema": "agentmeter.collector_plan_windows/1",
            "team": team,
            "as_of": datetime.fromtimestamp(now_s, UTC).isoformat(timespec="seconds"),
            "windows": rows,
        }
    )


def audit_query(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
    """since/until (a date YYYY-MM-DD or ISO 8601 time) and action, as `audit.entries` keywords."""
    out: dict[str, Any] = {}
    for name in ("since", "until"):
        value = request.query.get(name)
        if value is None:
            continue
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None, error(400, "bad_query", f"{name} must be a date YYYY-MM-DD or an ISO 8601 time", name)
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        out[f"{name}_ms"] = int(at.timestamp() * 1000)
    if request.query.get("action"):
        out["action"] = request.query["action"]
    return out, None


async def audit_log(request: web.Request) -> web.Response:
    who, denied = await authorize(request)
    if denied is not None:
        return denied
    query, bad = audit_query(request)
    if bad is not None:
        return bad
    c = request.app[COLLECTOR]
    rows = await c.db(lambda: audit.entries(c.store.conn, team=who["grant"].team, **query))
    return web.json_response(
        {"schema": "agentmeter.collector_audit/1", "team": who["grant"].team, "entries": audit.public(rows)}
    )


async def export_audit(request: web.Request) -> web.Response:
    who, denied = await authorize(request)
    if denied is not None:
        return denied
    query, bad = audit_query(request)
    if bad is not None:
        return bad
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "json"):
        return error(400, "bad_query", "format must be csv or json", "format")
    c = request.app[COLLECTOR]
    rows = audit.public(await c.db(lambda: audit.entries(c.store.conn, team=who["grant"].team, **query)))
    if fmt == "json":
        return web.json_response({"schema": "agentmeter.collector_audit/1", "entries": rows})
    buf = io.StringIO()
    audit.write_csv(rows, buf)
    return web.Response(
        text=buf.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="agentmeter-audit.csv"'},
    )


def dashboard_data(
    store: CollectorStore, today: date, month: str | None = None, now_s: int | None = None, only_team: str | None = None
) -> dict[str, Any]:
    """`only_team`: that team's spend only (a lead's view); None: every team."""
    first = date.fromisoformat(month + "-01") if month else today.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    since, until = first.isoformat(), last.isoformat()
    by_day = {r["day"]: r["cost_usd"] for r in store.daily(since, until, team=only_team)}
    daily = [
        {
            "day": (first + timedelta(days=i)).isoformat(),
            "cost_usd": by_day.get((first + timedelta(days=i)).isoformat(), 0.0),
        }
        for i in range((last - first).days + 1)
    ]
    burn = []
    fig = overview.figures(store, since, until, team=only_team)  # one scan for chargeback, burndown and totals
    teams = store.teams()
    monthly = {(c["scope"], c["name"]): c["monthly_usd"] for c in store.all_caps() if c["monthly_usd"] is not None}
    for dev in fig["developers"]:
        team = teams.get(dev["key"])
        caps = [
            (cap, src)
            for cap, src in (
                (monthly.get(("developer", dev["key"])), "developer cap"),
                (monthly.get(("team", team)), f"team {team}"),
            )
            if cap is not None
        ]
        cap, src = min(caps) if caps else (None, "")
        burn.append({"developer": dev["key"], "spent_usd": dev["cost_usd"], "cap_usd": cap, "cap_source": src})
    return {
        "period": first.strftime("%B %Y"),
        "since": since,
        "until": until,
        "chargeback": fig["chargeback"],
        "daily": daily,
        "burndown": burn,
        "by_agent": fig["by_agent"],
        "by_repo": fig["by_repo"],
        "totals": fig["totals"],
        "plan_windows": store.plan_windows(now_s or 0, team=only_team),
    }


async def dashboard_page(request: web.Request) -> web.Response:
    who, denied = await authorize(request, admin=True, allow_query=True)
    if denied is not None:
        return denied
    month = request.query.get("month")
    if month is not None:
        try:
            date.fromisoformat(month + "-01")
        except ValueError:
            return error(400, "bad_query", "month must be YYYY-MM", "month")
    c = request.app[COLLECTOR]
    now = c.clock.now()
    data = await c.read(dashboard_data, c.store, now.date(), month, c.clock.now_ms() // 1000, who["grant"].team)
    data["generated_at"] = now.isoformat(timespec="seconds")
    return web.Response(
        text=dashboard.render(data),
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus exposition. The admin token, unless the scraper's address is in --metrics-network."""
    c = request.app[COLLECTOR]
    if not metrics.network_allows(c.metrics_networks, request.remote):
        _who, denied = await authorize(request, admin=True)
        if denied is not None:
            return denied
    if not metrics.available():
        return error(501, "not_installed", f"/metrics needs prometheus-client: {metrics.INSTALL_HINT}")
    snap = await c.read(metrics.read, c.store.db, c.clock.now().date())
    body, ctype = metrics.exposition(snap)
    return web.Response(body=body, headers={"Content-Type": ctype, "Cache-Control": "no-store"})


def serve(
    db_path: Path | str,
    host: str,
    port: int,
    *,
    rate_per_minute: int = RATE_PER_MINUTE,
    print_fn=None,
    metrics_networks: tuple = (),
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(db_path, rate_per_minute=rate_per_minute, metrics_networks=metrics_networks)
    web.run_app(app, host=host, port=port, access_log_class=AccessLog, print=print_fn)
