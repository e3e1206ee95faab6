"""When a plan window runs out at the current pace, with a band.

The pace is the window's rise over a recent lookback (a fifth of the window: one hour of a 5-hour
window, about 33 hours of a weekly one), idle time included — that is the pace the developer is on.
The band comes from a bootstrap over the increments between readings in that lookback: resampling which
stretches of work happened gives a P10 and P90 rate, hence an early and a late run-out time. Fixed seed:
the same readings always give the same forecast.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import pairwise

from .shares import Point

LOOKBACK_FRACTION = 0.2
MIN_SPAN_S = 300  # under five minutes of readings there is no pace to speak of
DEFAULT_WINDOW_S = {"five_hour": 5 * 3600, "seven_day": 7 * 86400}
RESAMPLES = 200
# The band's two ends are widened apart: a pace that speeds up (a second session, a heavier task) is what the
# lookback cannot show yet, a slower one mostly shows as idle time already counted. Tuned with
# benchmarks/plan_pace_backtest.py on seeds 100-103, reported on 7-10 and 300-303 (benchmarks/RESULTS.md).
BAND_SCALE_UP = 2.2  # the early end of the band: a faster pace than the lookback's
BAND_SCALE_DOWN = 1.2  # the late end: a slower one
MIN_BAND = 0.12
ACCEL_CAP = 2.0  # the most a rate is assumed to grow again (the ratio of the halves)


@dataclass(frozen=True)
class Pace:
    rate_pct_per_h: float | None
    runs_out_at: float | None  # unix seconds (P50); None when it does not run out before the reset
    early: float | None  # P10 rate's run-out (the pessimistic end)
    late: float | None  # P90 rate's … (optimistic; None = not before the reset)
    verdict: str  # runs_out | on_track | unknown

    def as_dict(self) -> dict:
        from datetime import UTC, datetime

        def iso(t: float | None) -> str | None:
            return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds") if t is not None else None

        return {
            "runs_out_at": iso(self.runs_out_at),
            "band": {"early": iso(self.early), "late": iso(self.late)},
            "rate_pct_per_hour": round(self.rate_pct_per_h, 3) if self.rate_pct_per_h is not None else None,
            "verdict": self.verdict,
        }


UNKNOWN = Pace(None, None, None, None, "unknown")


def window_seconds(name: str, minutes: int | None) -> int:
    if minutes:
        return minutes * 60
    return DEFAULT_WINDOW_S.get(name.rpartition(":")[2], 5 * 3600)


def forecast(points: list[Point], now_s: float, window_s: int, band: bool = True) -> Pace:
    """`points`: readings of the current window instance (same reset time), in time order."""
    if not points:
        return UNKNOWN
    last = points[-1]
    resets = last.resets_at
    if resets is not None and now_s >= resets:
        return Pace(0.0, None, None, None, "on_track")
    start = now_s - window_s * LOOKBACK_FRACTION
    recent = [p for p in points if p.at_ms / 1000 >= start and p.resets_at == resets]
    if len(recent) < 2 or (recent[-1].at_ms - recent[0].at_ms) / 1000 < MIN_SPAN_S:
        return UNKNOWN
    span_s = max(now_s - recent[0].at_ms / 1000, (recent[-1].at_ms - recent[0].at_ms) / 1000)
    steps = [(max(0.0, b.used_pct - a.used_pct), (b.at_ms - a.at_ms) / 1000) for a, b in pairwise(recent)]
    rise = sum(s for s, _ in steps)
    rate = rise / span_s  # pct per second, idle tail up to now included
    left = max(0.0, 100.0 - last.used_pct)

    def out_at(r: float) -> float | None:
        if r <= 0:
            return None
        t = now_s + left / r
        return None if resets is not None and t >= resets else t

    if not band:  # the live alert needs only the median
        p50 = out_at(rate)
        return Pace(rate * 3600, p50, None, None, "runs_out" if p50 is not None else "on_track")
    rng = random.Random(1729)
    rates = []
    for _ in range(RESAMPLES):
        sample = [steps[rng.randrange(len(steps))] for _ in steps]
        dt = sum(d for _, d in sample) or 1.0
        rates.append(sum(s for s, _ in sample) / dt * (dt / (dt + (span_s - sum(d for _, d in steps)))))
    rates.sort()
    q90, q10 = rates[int(0.9 * (len(rates) - 1))], rates[int(0.1 * (len(rates) - 1))]
    # Resampling the increments treats the pace as known; sessions change it. Widened by BAND_SCALE_UP/DOWN, and
    # never narrower than ±MIN_BAND (benchmarks/plan_pace_backtest.py).
    hi = rate + max(BAND_SCALE_UP * (q90 - rate), MIN_BAND * rate)
    # An accelerating pace (the later half of the lookback faster than the earlier one): the early end of the
    # band assumes the later half's rate goes on rising by the same ratio (backtest: an accelerating window's
    # run-out fell before the band's early end in a third of the forecasts when the band ignored it).
    half = recent[0].at_ms / 1000 + span_s / 2
    early_rise = sum(s for (s, _), b in zip(steps, recent[1:], strict=True) if b.at_ms / 1000 <= half)
    late_rate = (rise - early_rise) / max(now_s - half, 1.0)
    early_rate = early_rise / max(half - recent[0].at_ms / 1000, 1.0)
    if early_rate > 0 and late_rate > early_rate:
        hi = max(hi, late_rate * min(late_rate / early_rate, ACCEL_CAP))
    lo = max(0.0, rate - max(BAND_SCALE_DOWN * (rate - q10), MIN_BAND * rate))
    p50 = out_at(rate)
    return Pace(rate * 3600, p50, out_at(hi), out_at(lo), "runs_out" if p50 is not None else "on_track")


class PaceWatch:
    """Recent readings per window, kept by the proxy so it can warn before a window runs out — once per
    window instance. Checked at most once a minute per window: the hot path pays a deque append."""

    CHECK_EVERY_S = 60.0
    KEEP = 240

    def __init__(self) -> None:
        self._points: dict[tuple, list[Point]] = {}
        self._checked: dict[tuple, float] = {}

    def add(self, key: tuple, point: Point) -> None:
        pts = self._points.setdefault(key, [])
        if pts and pts[-1].resets_at != point.resets_at:
            pts.clear()  # a new window instance
        pts.append(point)
        if len(pts) > self.KEEP:
            del pts[: len(pts) - self.KEEP]

    def due(self, key: tuple, now_s: float, window_s: int) -> Pace | None:
        if now_s - self._checked.get(key, float("-inf")) < self.CHECK_EVERY_S:
            return None
        self._checked[key] = now_s
        return forecast(self._points.get(key, []), now_s, window_s, band=False)
