"""Alerts: a budget stage crossed (from the preflight's check), and a plan window read off a response's
headers (from the relay) that runs out before it resets. Each is sent once, ever: its key is recorded in
the ledger, and it goes out in the background (desktop, webhook) so no request waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from ..core.clock import Clock
from ..core.models import Session
from ..home.config import Config
from ..ledger import Ledger, LedgerWriter
from ..providers import ratelimits
from .enforce import Check, Enforcer
from .exchange import Exchange

if TYPE_CHECKING:
    from ..budget.policy import WindowSpend
    from ..plan.pace import Pace, PaceWatch
    from ..providers.ratelimits import PlanSnapshot, PlanWindow

log = logging.getLogger("agentmeter.proxy")


class Tasks:
    """Background work the daemon owns (alerts, sync): referenced until done, cancelled at shutdown."""

    def __init__(self) -> None:
        self.running: set[asyncio.Future[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)  # noqa: TID251 (the helper itself: referenced in self.running)
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    def cancel_all(self) -> None:
        for task in list(self.running):
            task.cancel()


class Alerts:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        reader: Ledger,
        writer: LedgerWriter,
        enforcer: Enforcer,
        http: aiohttp.ClientSession,
        tasks: Tasks,
    ) -> None:
        self._config = config
        self._clock = clock
        self._reader = reader
        self._writer = writer
        self._enforcer = enforcer
        self._http = http
        self._tasks = tasks
        self.sent: set[str] = reader.alert_keys()  # keys of alerts already sent (the ledger remembers them)
        self.pace_watch: PaceWatch | None = None  # made on the first plan reading
        # Each in-flight response's header reading (windows, raw), until it is metered.
        self._from_headers: dict[str, tuple] = {}

    # -- budget stages -----------------------------------------------------------------------------------------

    def fire(self, chk: Check, session: Session) -> None:
        """Each (window, threshold) once, ever: recorded in the ledger, then sent in the background."""
        from ..budget.policy import stage_of

        for name, threshold in chk.decision.alerts:
            w = next((x for x in chk.windows if x.name == name), None)
            if w is None:
                continue
            ident = w.end.isoformat() if w.end is not None else session.id
            key = f"{name}:{ident}:{threshold:g}"
            if key in self.sent:
                continue
            self.sent.add(key)
            stage = stage_of(threshold, self._enforcer.thresholds)
            self._tasks.spawn(self._send_stage(key, w, threshold, stage, session))

    async def _send_stage(self, key: str, w: WindowSpend, threshold: float, stage: str, session: Session) -> None:
        from . import notify

        plan = getattr(w, "kind", "spend") == "plan"
        if plan:
            from ..plan import label

            what = {
                "alert": "heads-up",
                "downgrade": "easy turns now use a cheaper model",
                "blocked": "new requests are refused",
            }.get(stage, "")
            text = (
                f"{label(w.name.rpartition('plan ')[2])} plan window {w.spent_usd * 100:.0f}% used "
                f"(your line: {(w.line or 0) * 100:.0f}%)" + (f" ({what})" if what else "")
            )
        else:
            text = notify.alert_text(w.name, threshold, w.spent_usd, w.cap_usd, stage)
        extra = self._projection(w)
        if extra:
            text += notify.projection_text(extra["projection"])
        payload: dict[str, Any] = {
            "text": f"agentmeter: {text}",
            "window": w.name,
            "threshold": threshold,
            "stage": stage,
            "spent_usd": round(w.spent_usd, 4),
            "cap_usd": w.cap_usd,
            "spent_tokens": w.spent_tokens,
            "cap_tokens": w.cap_tokens,
            "resets_at": w.end.isoformat() if w.end else None,
            **_who(session),
        }
        if plan:  # a plan window: a used share of the provider's window
            payload.update(
                {
                    "kind": "plan",
                    "used_pct": round(w.spent_usd * 100, 2),
                    "line": w.line,
                    "spent_usd": None,
                    "cap_usd": None,
                }
            )
        payload.update(extra)
        channels = await self._send(text, payload)
        await self._remember(key, w.name, threshold, w.spent_usd, w.cap_usd, channels)

    def _projection(self, w: WindowSpend) -> dict[str, Any]:
        """P10/P50/P90 for the window's period, the 7-day trend and a recommended action (issue 20 item 5)."""
        agent, _, period = w.name.rpartition(" ")
        if getattr(w, "kind", "spend") != "spend" or period not in ("day", "week", "month"):
            return {}
        from ..budget.projection import alert_fields

        enf = self._enforcer
        try:
            return alert_fields(
                lambda day: enf.totals.day(self._reader, day, agent or "*")[0],
                period,
                self._clock.now(),
                enf.tz,
                w.spent_usd,
                w.cap_usd,
            )
        except Exception as exc:  # the alert goes out without it rather than not at all
            log.info("alert projection skipped: %s: %s", type(exc).__name__, exc)
            return {}

    # -- plan windows ------------------------------------------------------------------------------------------

    def observe_plan(self, ex: Exchange, raw_headers: Sequence[tuple[bytes, bytes]], http_status: int) -> None:
        """Read the plan-window headers of a response as it arrives (one prefix test per header), update
        the brake's latest state at once, and store the compact snapshot on the writer thread."""
        try:
            fam = ratelimits.family_headers(raw_headers)
            if not fam:
                return
            now_ms = self._clock.now_ms()
            snap = ratelimits.parse(ex.provider, fam, http_status=http_status, now_s=now_ms // 1000)
        except Exception as exc:  # metering never breaks a request
            log.error("plan-window headers of %s not read: %s: %s", ex.request_id, type(exc).__name__, exc)
            return
        if not snap.windows and not snap.extra and not snap.known and snap.status is None:
            return
        self._from_headers[ex.request_id] = (snap.windows, fam)
        self._plan_reading(ex, snap, fam, now_ms)

    def observe_stream_plan(self, ex: Exchange, snap: PlanSnapshot | None) -> None:
        """When a response is metered: a reading from inside its stream (Codex's `codex.rate_limits` event) is
        recorded like a header reading, unless it only repeats this response's headers."""
        windows, raw = self._from_headers.pop(ex.request_id, ((), {}))
        if snap is None or snap.windows == windows:
            return
        try:
            self._plan_reading(ex, snap, raw, self._clock.now_ms())
        except Exception as exc:  # metering never breaks a request
            log.error("plan-window event of %s not read: %s: %s", ex.request_id, type(exc).__name__, exc)

    def _plan_reading(self, ex: Exchange, snap: PlanSnapshot, raw: dict, now_ms: int) -> None:
        """A reading, from the headers or the stream: the brake's state at once, the pace, the snapshot row."""
        account = ex.plan_account or "default"
        self._enforcer.plan.observe(ex.provider, account, snap, now_ms / 1000)
        from ..ledger import plan as ledger_plan

        try:
            self._watch_pace(ex.provider, account, snap, now_ms, ex.session)
        except Exception as exc:
            log.error("plan pace check failed: %s: %s", type(exc).__name__, exc)

        rid, sid, provider = ex.request_id, ex.session.id, ex.provider
        self._writer.submit(
            lambda lg: ledger_plan.insert_snapshot(
                lg, at_ms=now_ms, request_id=rid, session_id=sid, provider=provider, account=account, snap=snap, raw=raw
            )
        )

    def _watch_pace(self, provider: str, account: str, snap: PlanSnapshot, now_ms: int, session: Session) -> None:
        """Warn once per window instance when the current pace runs the window out before its reset."""
        from ..plan.pace import window_seconds
        from ..plan.shares import Point

        watch = self.pace_watch or self._load_pace_history()
        for w in snap.windows:
            key = (provider, account, w.name)
            watch.add(key, Point(now_ms, w.used_pct, w.resets_at))
            pace = watch.due(key, now_ms / 1000, window_seconds(w.name, w.window_minutes))
            if pace is None or pace.verdict != "runs_out":
                continue
            alert_key = f"plan:{provider}:{account}:{w.name}:{w.resets_at}:pace"
            if alert_key in self.sent:
                continue
            self.sent.add(alert_key)
            self._tasks.spawn(self._send_pace(alert_key, w, pace, account, session))

    def _load_pace_history(self) -> PaceWatch:
        """After a restart the pace is known at once: the last few hours of readings from the ledger."""
        from ..ledger import plan as ledger_plan
        from ..plan.pace import PaceWatch
        from ..plan.shares import Point

        watch = self.pace_watch = PaceWatch()
        since = self._clock.now_ms() - 6 * 3600 * 1000
        for s in ledger_plan.snapshots(self._reader.conn, since):
            for name, (used, resets, _m) in s["windows"].items():
                watch.add((s["provider"], s["account"], name), Point(int(s["at"]), float(used), resets))
        return watch

    async def _send_pace(self, key: str, w: PlanWindow, pace: Pace, account: str, session: Session) -> None:
        when = pace.as_dict()["runs_out_at"]
        from ..plan import label

        text = (
            f"{label(w.name)} plan window {w.used_pct:.0f}% used: at this pace it runs out around "
            f"{when[11:16]} UTC, before it resets"
        )
        payload = {
            "text": f"agentmeter: {text}",
            "kind": "plan_pace",
            "window": w.name,
            "account": account,
            "used_pct": round(w.used_pct, 2),
            "runs_out_at": when,
            "resets_at": w.resets_at,
            **_who(session),
        }
        channels = await self._send(text, payload)
        await self._remember(key, f"plan {w.name}", 1.0, None, None, channels)

    # -- delivery ----------------------------------------------------------------------------------------------

    async def _send(self, text: str, payload: dict[str, Any]) -> list[str]:
        from . import notify

        channels = []
        if self._config.alerts.desktop and await notify.desktop("agentmeter", text):
            channels.append("desktop")
        if self._config.alerts.webhook and await notify.webhook(self._http, self._config.alerts.webhook, payload):
            channels.append("webhook")
        return channels

    async def _remember(
        self,
        key: str,
        window: str,
        threshold: float,
        spent_usd: float | None,
        cap_usd: float | None,
        channels: list[str],
    ) -> None:
        row = {
            "key": key,
            "window": window,
            "threshold": threshold,
            "spent_usd": spent_usd,
            "cap_usd": cap_usd,
            "sent_at": self._clock.now_ms(),
            "channels": ",".join(channels),
        }
        await asyncio.wrap_future(self._writer.submit(lambda lg: lg.insert_alert(row)))


def _who(session: Session) -> dict[str, Any]:
    return {"developer": session.developer, "agent": session.agent, "session_id": session.id}
