"""The latest reading of every plan window, per account, kept in memory by the proxy for the brake.

Updated on the event loop when a response's headers arrive (a dict assignment per window); read by the
budget check before a request goes upstream. A reading whose reset time has passed counts as 0 %: the
provider's window rolled over and the next response will say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..providers.ratelimits import PlanSnapshot


@dataclass(frozen=True, slots=True)
class Reading:
    provider: str
    account: str
    window: str
    used_pct: float
    resets_at: int | None
    status: str | None
    at_s: float
    window_minutes: int | None = None

    def used_now(self, now_s: float) -> float:
        if self.resets_at is not None and now_s >= self.resets_at:
            return 0.0
        return self.used_pct


class PlanTracker:
    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], dict[str, Reading]] = {}

    def observe(self, provider: str, account: str, snap: PlanSnapshot, at_s: float) -> None:
        slot = self._latest.setdefault((provider, account), {})
        for w in snap.windows:
            old = slot.get(w.name)
            if old is not None and old.at_s > at_s:
                continue  # a slower response that started earlier: its reading is older
            slot[w.name] = Reading(
                provider, account, w.name, w.used_pct, w.resets_at, snap.status, at_s, w.window_minutes
            )

    def observe_stored(self, snap: dict) -> None:
        """A stored snapshot (ledger/plan.py `snapshots`), for the replay of `budget test`."""
        slot = self._latest.setdefault((snap["provider"], snap["account"]), {})
        for name, (used, resets, minutes) in snap["windows"].items():
            slot[name] = Reading(
                snap["provider"],
                snap["account"],
                name,
                float(used),
                resets,
                snap.get("status"),
                snap["at"] / 1000,
                minutes,
            )

    def for_provider(self, provider: str, subscription: bool) -> list[Reading]:
        """Every account's readings of one provider (a recorded request does not name its account)."""
        return [
            r
            for (p, acct), slot in self._latest.items()
            if p == provider and (acct != "api") == subscription
            for r in slot.values()
        ]

    def load(self, readings: list[Reading]) -> None:
        for r in readings:
            slot = self._latest.setdefault((r.provider, r.account), {})
            old = slot.get(r.window)
            if old is None or old.at_s <= r.at_s:
                slot[r.window] = r

    def readings(self, provider: str, account: str) -> list[Reading]:
        return list(self._latest.get((provider, account), {}).values())

    def all(self) -> list[Reading]:
        return [r for slot in self._latest.values() for r in slot.values()]
