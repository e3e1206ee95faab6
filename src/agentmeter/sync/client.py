"""Pushing summaries to the team collector, with backoff, and fetching team caps back.

Nothing is queued in memory: every push is derived from the ledger and compared with `sync_pushed` (the
digest the collector last acknowledged for each item), so rows made while the collector was down simply
go out with the next successful push, and a push cut off half way is finished by the next one. Failures
are recorded in `sync_state` (failures, failing_since, next_attempt_at) and the daemon waits until
`next_attempt_at`; `agentmeter sync` always tries at once. A changed collector id (a new collector, or
its database lost) makes everything go out again.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__
from ..core.clock import Clock, SystemClock, ms_to_iso
from ..home.config import Config
from ..ledger import sync as q
from ..ledger.access import Connection, DirectAccess
from . import payload

T = TypeVar("T")
BATCH = 500  # items per POST: well under the collector's 1 MiB body limit (an item is ~600 bytes)
BATCH_BYTES = 512 * 1024  # and never more than half of that limit, whatever the items hold
# Answers that refuse what was sent, not the sender: the batch is split until the one item at fault is found
# and skipped (issue 14 item 11: one bad item made every later sync fail with 422, for good).
ITEM_FAULT = frozenset({400, 413, 422})
BACKOFF_BASE_S = 30
BACKOFF_MAX_S = 3600
TIMEOUT_S = 10


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None


def collector_url(config: Config) -> str:
    return (os.environ.get("AGENTMETER_COLLECTOR_URL") or config.sync.collector or "").strip().rstrip("/")


def target(config: Config) -> Target | None:
    """AGENTMETER_COLLECTOR_URL, else `[sync] collector`; the token from AGENTMETER_COLLECTOR_TOKEN, else
    the keyring, else the 0600 credentials file (`agentmeter keys set collector`)."""
    url = collector_url(config)
    if not url:
        return None
    from ..home.secrets import get_secret

    secret = get_secret("collector")
    return Target(url, secret.value if secret else None)


def backoff_s(failures: int) -> int:
    return min(BACKOFF_BASE_S * 2 ** max(0, failures - 1), BACKOFF_MAX_S)


class SyncFailure(Exception):
    def __init__(self, kind: str, message: str, retry_after: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.status = status


def call(method: str, url: str, token: str | None, body: dict | None = None, timeout: float = TIMEOUT_S) -> dict:
    """One JSON request to the collector; every failure becomes a SyncFailure with a kind."""
    data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
    headers = {"Accept": "application/json", "User-Agent": f"agentmeter/{__version__}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = _error_text(exc)
        if exc.code in (401, 403):
            raise SyncFailure("token", f"the collector refused the token ({exc.code}): {detail}") from None
        if exc.code == 429:
            retry = exc.headers.get("Retry-After")
            raise SyncFailure(
                "rate_limited",
                f"the collector is rate limiting this token: {detail}",
                int(retry) if retry and retry.isdigit() else None,
            ) from None
        if exc.code >= 500:
            raise SyncFailure("collector", f"the collector failed ({exc.code}): {detail}") from None
        raise SyncFailure(
            "rejected", f"the collector rejected the push ({exc.code}): {detail}", status=exc.code
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SyncFailure("unreachable", f"cannot reach the collector at {url} ({reason})") from None
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise SyncFailure("collector", f"the collector at {url} did not answer JSON") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return exc.reason or ""
    if isinstance(body, dict):
        msg = str(body.get("message") or body.get("error") or "")
        return msg + (f" (field {body['field']})" if body.get("field") else "")
    return ""


# -- one sync ---------------------------------------------------------------------------------------------


def identity_of(config: Config, conn: Connection) -> dict[str, Any]:
    ident = {
        "developer": config.identity.developer,
        "team": config.identity.team,
        "cost_center": config.identity.cost_center,
    }
    if not all(ident.values()):
        latest = q.latest_identity(conn)
        ident = {k: v or latest.get(k) for k, v in ident.items()}
    return ident


def due(state: dict[str, str], now_ms: int) -> bool:
    return int(state.get(q.NEXT_ATTEMPT_AT) or 0) <= now_ms


def device_id(access) -> str:
    got = access.read(lambda c: q.read_state(c).get(q.DEVICE_ID))
    if got:
        return got
    new = secrets.token_hex(16)
    # Two syncs racing on a new ledger must agree on one id: keep the first one written.
    access.write(lambda c: q.claim_device_id(c, new))
    return access.read(lambda c: q.read_state(c)[q.DEVICE_ID])


def sync_once(
    access, config: Config, clock: Clock, *, tz=None, target_: Target | None = None, batch: int = BATCH
) -> dict[str, Any]:
    """Fetch team caps, then push every changed item. Returns the `agentmeter.sync/1` payload."""
    tgt = target_ or target(config)
    result: dict[str, Any] = {
        "collector": tgt.url if tgt else None,
        "configured": tgt is not None,
        "ok": False,
        "pushed": {"rollups": 0, "sessions": 0, "deleted": 0, "plan_windows": 0},
        "unchanged": 0,
        "pending": 0,
        "error": None,
    }
    if tgt is None:
        return result
    dev = device_id(access)
    result["device_id"] = dev
    state = access.read(q.read_state)
    pending = 0
    try:
        if not tgt.token:
            raise SyncFailure(
                "token", "no collector token: set AGENTMETER_COLLECTOR_TOKEN or run: agentmeter keys set collector"
            )
        # The device id lets the collector publish the team wallet's figure without this device's own spend,
        # which the proxy adds live from the ledger (sync/wallet.py).
        caps = call("GET", f"{tgt.url}/v1/caps?device_id={dev}", tgt.token)
        collector_id = str(caps.get("collector_id") or "")
        result["collector_id"] = collector_id
        if collector_id != state.get(q.COLLECTOR_ID):
            access.write(lambda c: (q.forget_pushed(c), q.write_state(c, {q.COLLECTOR_ID: collector_id})))
        team_caps = caps.get("caps") if isinstance(caps.get("caps"), dict) else {}
        if isinstance(team_caps.get("wallet"), dict):
            team_caps["wallet"]["fetched_at_ms"] = clock.now_ms()  # its age, on this machine's clock
        result["caps"] = team_caps
        items, deleted, unchanged = _work(access, config, dev, tz, clock.now_ms() / 1000)
        result["unchanged"] = unchanged
        pending = len(items) + len(deleted)
        skipped: list[dict[str, Any]] = []
        result["skipped"] = skipped
        for chunk_items, chunk_deleted in _chunks(items, deleted, batch):

            def send(its, gone):
                return call(
                    "POST",
                    f"{tgt.url}/v1/push",
                    tgt.token,
                    {
                        "schema": payload.SCHEMA,
                        "device_id": dev,
                        "client_version": __version__,
                        "identity": access.read(lambda c: identity_of(config, c)),
                        "rollups": [i for i, _d, kind in its if kind == "rollup"],
                        "sessions": [i for i, _d, kind in its if kind == "session"],
                        "plan_windows": [i for i, _d, kind in its if kind == "plan_window"],
                        "deleted": gone,
                    },
                )

            stored, refused = _push(send, chunk_items, chunk_deleted)
            now = clock.now_ms()
            # A refused item is marked pushed at its digest too: it is not sent again until it changes, so it can
            # never hold the others back. It is named in the result and in the sync state.
            acked = [(i["key"], d) for i, d, _k in chunk_items]
            access.write(
                lambda c, acked=acked, gone=chunk_deleted, now=now: (
                    q.mark_pushed(c, acked, now),
                    q.forget_pushed(c, gone),
                )
            )
            pending -= len(chunk_items) + len(chunk_deleted)
            skipped += refused
            result["pushed"]["rollups"] += sum(1 for _i, _d, kind in stored if kind == "rollup")
            result["pushed"]["sessions"] += sum(1 for _i, _d, kind in stored if kind == "session")
            result["pushed"]["deleted"] += len(chunk_deleted)
            result["pushed"]["plan_windows"] += sum(1 for _i, _d, kind in stored if kind == "plan_window")
        if skipped:
            note = f"{len(skipped)} item(s) refused by the collector and skipped; first: {skipped[0]['reason']}"
            access.write(lambda c: q.write_state(c, {"last_skipped": note[:500]}))
        now = clock.now_ms()
        access.write(
            lambda c: q.write_state(
                c,
                {
                    q.LAST_PUSH_AT: now,
                    q.LAST_ATTEMPT_AT: now,
                    q.FAILURES: 0,
                    q.FAILING_SINCE: None,
                    q.NEXT_ATTEMPT_AT: None,
                    q.LAST_ERROR: None,
                    q.PENDING: 0,
                    q.TEAM_CAPS: json.dumps(team_caps, sort_keys=True),
                },
            )
        )
        access.write(lambda c: audit_team_caps(c, state.get(q.TEAM_CAPS), team_caps, tgt.url, now))
        result["ok"] = True
    except SyncFailure as exc:
        now = clock.now_ms()
        failures = int(state.get(q.FAILURES) or 0) + 1
        wait = max(backoff_s(failures), exc.retry_after or 0)
        next_at = now + wait * 1000
        if pending == 0 and exc.kind != "token":
            pending = _pending_count(access, config, dev, tz, now / 1000)
        failed = {
            q.LAST_ATTEMPT_AT: now,
            q.FAILURES: failures,
            q.FAILING_SINCE: state.get(q.FAILING_SINCE) or now,
            q.NEXT_ATTEMPT_AT: next_at,
            q.LAST_ERROR: f"{exc.kind}: {exc.message}",
            q.PENDING: pending,
        }
        access.write(lambda c: q.write_state(c, failed))
        result.update(
            error={"kind": exc.kind, "message": exc.message}, failures=failures, next_attempt_at=ms_to_iso(next_at)
        )
    result["pending"] = pending
    return result


def _work(access, config: Config, dev: str, tz, now_s: float) -> tuple[list[tuple[dict, str, str]], list[str], int]:
    """(changed items with digests and kinds, keys to delete, unchanged count)."""
    from ..ledger.plan import plan_section
    from ..pricing.focus import ListRates
    from .plan_windows import plan_items

    def read(c: Connection):
        return (
            q.rollup(c),
            q.session_totals(c),
            q.pushed(c),
            identity_of(config, c),
            plan_section(c, now_s, config.budget.plan),
        )

    rollups, sessions, pushed, ident, plan = access.read(read)
    items = [(i, "rollup") for i in payload.rollup_items(rollups, dev, ident, ListRates(config))]
    items += [(i, "session") for i in payload.session_items(sessions, dev, ident, tz)]
    items += [(i, "plan_window") for i in plan_items(plan, dev)]
    todo = []
    for item, kind in items:
        d = payload.digest(item)
        if pushed.get(item["key"]) != d:
            todo.append((item, d, kind))
    live = {i["key"] for i, _k in items}
    # A rollup row that no longer exists here (the ledger was repriced or rebuilt) must not stay counted there.
    deleted = sorted(k for k in pushed if k not in live)
    return todo, deleted, len(items) - len(todo)


def _pending_count(access, config: Config, dev: str, tz, now_s: float) -> int:
    try:
        todo, deleted, _ = _work(access, config, dev, tz, now_s)
    except Exception:
        return 0
    return len(todo) + len(deleted)


def _chunks(items: list, deleted: list[str], size: int, max_bytes: int = BATCH_BYTES):
    chunk: list = []
    used = 0
    for it in items:
        n = len(json.dumps(it[0], separators=(",", ":")))
        if chunk and (len(chunk) >= size or used + n > max_bytes):
            yield chunk, []
            chunk, used = [], 0
        chunk.append(it)
        used += n
    if chunk:
        yield chunk, []
    for start in range(0, len(deleted), size):
        yield [], deleted[start : start + size]


def _push(send, items: list, deleted: list[str]) -> tuple[list, list[dict[str, Any]]]:
    """Send one batch; (items stored, items refused with why). A refusal of the batch as such (400, 413, 422)
    is narrowed down by halves to the items at fault, which are skipped; the rest still go in."""
    try:
        answer = send(items, deleted)
    except SyncFailure as exc:
        if exc.status not in ITEM_FAULT:
            raise
        if len(items) + len(deleted) <= 1:
            return [], [_refused(it, exc.message) for it in items] + [
                {"key": k, "kind": "deleted", "reason": exc.message} for k in deleted
            ]
        half_i, half_d = len(items) // 2, len(deleted) // 2
        parts = [(items[:half_i], deleted[:half_d]), (items[half_i:], deleted[half_d:])]
        stored, refused = [], []
        for its, gone in parts:
            if its or gone:
                s, r = _push(send, its, gone)
                stored += s
                refused += r
        return stored, refused
    # A collector that skips single items says which ("rollups[3]"), and why.
    by_name: dict[str, tuple] = {}
    counters = {"rollup": 0, "session": 0, "plan_window": 0}
    for it in items:
        kind = it[2]
        by_name[f"{kind}s[{counters[kind]}]"] = it
        counters[kind] += 1
    refused = []
    bad = set()
    for r in answer.get("rejected") or [] if isinstance(answer, dict) else []:
        it = by_name.get(str(r.get("item"))) if isinstance(r, dict) else None
        if it is not None:
            bad.add(id(it))
            refused.append(_refused(it, f"{r.get('field')}: {r.get('message')}"))
    return [it for it in items if id(it) not in bad], refused


def _refused(it: tuple, reason: str) -> dict[str, Any]:
    item, _digest, kind = it
    return {"key": item["key"], "kind": kind, "day": item.get("day"), "reason": str(reason)[:300]}


# -- entry points ---------------------------------------------------------------------------------------------


def sync_preview(config: Config, ledger_path: Path | None = None) -> dict[str, Any]:
    """`agentmeter sync --dry-run`: what the next push would send, read from the ledger; no network, no writes."""
    from ..core.timezone import resolve_tz
    from ..home.paths import get_paths

    tz = resolve_tz(config.budget.timezone)
    access = DirectAccess(ledger_path or get_paths().ledger, tz)
    try:
        dev = access.read(lambda c: q.read_state(c).get(q.DEVICE_ID)) or "(new device)"
        items, deleted, unchanged = _work(access, config, dev, tz, SystemClock().now_ms() / 1000)
    finally:
        access.close()
    return {
        "dry_run": True,
        "collector": collector_url(config) or None,
        "would_push": {
            "rollups": sum(1 for *_x, kind in items if kind == "rollup"),
            "sessions": sum(1 for *_x, kind in items if kind == "session"),
            "plan_windows": sum(1 for *_x, kind in items if kind == "plan_window"),
            "deleted": len(deleted),
        },
        "unchanged": unchanged,
    }


def sync_now(config: Config, clock: Clock, ledger_path: Path | None = None) -> dict[str, Any]:
    """`agentmeter sync`: push now (ignoring any backoff), then the OTLP export when one is configured."""
    from ..core.errors import ConfigError
    from ..core.timezone import resolve_tz
    from ..home.paths import get_paths
    from . import otel
    from .caps import cap_sources, effective_budget

    if not collector_url(config) and not otel.configured(config):
        raise ConfigError(
            "no collector configured",
            "set AGENTMETER_COLLECTOR_URL, or [sync] collector (and otlp_endpoint) in config.toml",
        )
    tz = resolve_tz(config.budget.timezone)
    access = DirectAccess(ledger_path or get_paths().ledger, tz)
    try:
        result = sync_once(access, config, clock, tz=tz)
        result["otel"] = otel.export_once(access, config, clock)
        caps = access.read(q.team_caps)
    finally:
        access.close()
    eff = effective_budget(config, caps).caps
    result["effective_caps"] = {k: v for k, v in vars(eff).items() if v is not None}
    result["cap_sources"] = cap_sources(config, caps)
    return result


def audit_team_caps(conn, old_json: str | None, new: dict[str, Any], url: str, now_ms: int) -> None:
    """The caps the collector hands out changed since the last sync: an audit entry on this machine too (the
    collector's own audit trail says who changed them)."""
    from ..ledger.audit import record

    try:
        old = json.loads(old_json) if old_json else {}
    except ValueError:
        old = {}
    if old == new or (not old_json and not any(new.values())):
        return
    record(
        conn, at_ms=now_ms, actor="collector " + url, action="team_caps.changed", target="team caps", old=old, new=new
    )
