"""Forecast calibration backtest: does the P10-P90 band hold the real month total ~80 % of the time?

    python benchmarks/forecast_backtest.py                 # full run (about a minute)
    python benchmarks/forecast_backtest.py --quick         # a few-second smoke run
    python benchmarks/forecast_backtest.py --ledger PATH   # also replay a real agentmeter ledger
    python benchmarks/forecast_backtest.py --variant before --variant current   # before/after tuning

Synthetic daily-spend histories (400 days, several seeds, start dates shifted so months fall on
different weekdays): steady (noise), weekly (weekday/weekend), trending (+3 %/week), spiky (occasional
10x days), and a "ledger" history, replayed from `--ledger` (`SELECT day, SUM(cost_usd) FROM usage_daily
GROUP BY day`) or synthesised from a mix of the patterns with level shifts and idle weeks. For every
month with at least 60 days of history before it, at every day d of the month, at a random time of day
(today's spend so far = that share of the day's spend), the month-end total is forecast from the days
before d and compared with the realised total. "cold start" rows do the same with only 0-13 days of
history (the run-rate fallback).

Reported per scenario: share of outcomes inside [P10, P90] (target 70-90 %), below P10, above P90,
and the median absolute P50 error on day 10 of the month, as % of the month total.
"""

from __future__ import annotations

import argparse
import calendar
import math
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from agentmeter.budget import forecast as fc

DAYS = 400
WARMUP_DAYS = 60
HISTORY_PASSED = 130  # days handed to forecast(): beyond its lookback, so nothing it could use is cut

Series = dict[date, float]


def _noise(rng: random.Random, sigma: float) -> float:
    """Mean-one lognormal noise."""
    return rng.lognormvariate(-sigma * sigma / 2, sigma)


def steady(rng: random.Random, start: date) -> Series:
    return {start + timedelta(days=i): 20 * _noise(rng, 0.35) for i in range(DAYS)}


def weekly(rng: random.Random, start: date) -> Series:
    out = {}
    for i in range(DAYS):
        d = start + timedelta(days=i)
        if d.weekday() < 5:
            out[d] = 25 * _noise(rng, 0.35)
        else:  # mostly idle weekends, a small session now and then
            out[d] = 6 * _noise(rng, 0.5) if rng.random() < 0.1 else 0.0
    return out


def trending(rng: random.Random, start: date) -> Series:
    return {start + timedelta(days=i): 8 * 1.03 ** (i / 7) * _noise(rng, 0.35) for i in range(DAYS)}


def spiky(rng: random.Random, start: date) -> Series:
    return {start + timedelta(days=i): 10 * _noise(rng, 0.3) * (10 if rng.random() < 0.05 else 1) for i in range(DAYS)}


def mixed(rng: random.Random, start: date) -> Series:
    """A plausible developer: weekday work, level shifts every few weeks, idle weeks, spikes, slow growth."""
    out = {}
    level, shift_in, idle_left = 15.0, rng.randint(14, 42), 0
    for i in range(DAYS):
        d = start + timedelta(days=i)
        shift_in -= 1
        if shift_in <= 0:
            level = min(max(level * _noise(rng, 0.4), 3.0), 80.0)
            shift_in = rng.randint(14, 42)
        if d.weekday() == 0 and idle_left <= 0 and rng.random() < 0.05:
            idle_left = 7 * rng.randint(1, 2)
        idle_left -= 1
        if idle_left >= 0:
            out[d] = 0.0
            continue
        base = level * 1.01 ** (i / 7)
        if d.weekday() >= 5:
            out[d] = base * 0.5 * _noise(rng, 0.6) if rng.random() < 0.25 else 0.0
        else:
            out[d] = 0.0 if rng.random() < 0.08 else base * _noise(rng, 0.5) * (6 if rng.random() < 0.03 else 1)
    return out


SCENARIOS: dict[str, Callable[[random.Random, date], Series]] = {
    "steady": steady,
    "weekly": weekly,
    "trending": trending,
    "spiky": spiky,
    "ledger (synthetic mix)": mixed,
}

# "before": the first cut, the brief's example (same weekday x3, every other day x1; run-rate bands 0.4x / 2x)
# with plain day resampling (no level uncertainty). "current": the module's constants.
VARIANTS: dict[str, dict[str, float]] = {
    "current": {},
    "before": {
        "WEIGHT_SAME_WEEKDAY": 3.0,
        "WEIGHT_SAME_KIND": 1.0,
        "WEIGHT_OTHER": 1.0,
        "LEVEL_ERROR_SCALE": 0.0,
        "RUN_RATE_P90": 2.0,
        "TREND_WEEKS": 0,
        "RUN_RATE_MIN_DAYS": 10**6,
    },
    # as on main before issue 18 (its run-rate approximately: the weekday split and the spike shrink stay)
    "round-2": {"TREND_WEEKS": 0, "RUN_RATE_MIN_DAYS": 10**6, "RUN_RATE_P90": 2.5},
    "no-trend": {"TREND_WEEKS": 0},
    "trend-8w": {"TREND_WEEKS": 8},
}
TUNABLES = (
    "WEIGHT_SAME_WEEKDAY",
    "WEIGHT_SAME_KIND",
    "WEIGHT_OTHER",
    "LEVEL_ERROR_SCALE",
    "RUN_RATE_P10",
    "RUN_RATE_P90",
    "TREND_WEEKS",
    "TREND_SHRINK",
    "DRIFT_NET",
    "RUN_RATE_MIN_DAYS",
    "RUN_RATE_PRIOR_CV",
    "RUN_RATE_PRIOR_CV_UP",
    "RUN_RATE_SCALE_DOWN",
    "RUN_RATE_DRIFT_DOWN",
    "RUN_RATE_WEEKEND_RATIO",
    "RUN_RATE_SPIKE_DAYS",
)


def read_ledger(path: str) -> Series:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT day, SUM(cost_usd) FROM usage_daily GROUP BY day ORDER BY day").fetchall()
    days = {date.fromisoformat(day): float(cost or 0.0) for day, cost in rows}
    if not days:
        return {}
    first, last = min(days), max(days)
    return {first + timedelta(days=i): days.get(first + timedelta(days=i), 0.0) for i in range((last - first).days + 1)}


@dataclass
class Tally:
    n: int = 0
    inside: int = 0
    below: int = 0
    above: int = 0
    day10_errors: list[float] = field(default_factory=list)
    by_part: list[list[int]] = field(default_factory=lambda: [[0, 0], [0, 0], [0, 0]])  # [inside, n]
    methods: dict[str, int] = field(default_factory=dict)
    from_day10: list[int] = field(default_factory=lambda: [0, 0])  # [inside, n] for days 10 and later
    # the same, without the forecasts of users who have spent nothing yet (method "none": spent so far is
    # all such a forecast can say, and it cannot hold a month that is still to come)
    spent_from_day10: list[int] = field(default_factory=lambda: [0, 0])

    def add(self, f: fc.Forecast, actual: float, day: int) -> None:
        self.n += 1
        self.methods[f.method] = self.methods.get(f.method, 0) + 1
        tol = 1e-9 * max(1.0, abs(actual))
        if actual < f.p10 - tol:
            self.below += 1
        elif actual > f.p90 + tol:
            self.above += 1
        else:
            self.inside += 1
        if day >= 10:
            self.from_day10[0] += actual >= f.p10 - tol and actual <= f.p90 + tol
            self.from_day10[1] += 1
            if f.method != "none":
                self.spent_from_day10[0] += actual >= f.p10 - tol and actual <= f.p90 + tol
                self.spent_from_day10[1] += 1
        part = self.by_part[min((day - 1) // 10, 2)]
        part[0] += actual >= f.p10 - tol and actual <= f.p90 + tol
        part[1] += 1
        if day == 10 and actual > 0:
            self.day10_errors.append(abs(f.p50 - actual) / actual)


def months_in(series: Series, warmup: int) -> list[tuple[date, date]]:
    first, last = min(series), max(series)
    out = []
    m = (first + timedelta(days=warmup)).replace(day=1)
    while True:
        if m < first + timedelta(days=warmup):
            m = (m + timedelta(days=32)).replace(day=1)
            continue
        end = m.replace(day=calendar.monthrange(m.year, m.month)[1])
        if end > last:
            return out
        out.append((m, end))
        m = end + timedelta(days=1)


def backtest(series: Series, tally: Tally, rng: random.Random, draws: int, cold: bool) -> None:
    """Forecast each month-end from each day of the month. Cold start: the user began 0-13 days before
    `today`, so their history, spend in the window and month total start then too."""
    for first, last in months_in(series, WARMUP_DAYS):
        month = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        for today in month:
            keep = rng.randint(0, 13) if cold else HISTORY_PASSED
            began = today - timedelta(days=keep)
            frac = rng.random()
            history = {d: series[d] for d in (today - timedelta(days=k) for k in range(1, keep + 1)) if d in series}
            spent = sum(series[d] for d in month if began <= d < today) + frac * series[today]
            actual = sum(series[d] for d in month if d >= began)
            f = fc.forecast(
                history,
                today=today,
                window_first=first,
                window_last=last,
                spent_in_window=spent,
                today_fraction=frac,
                draws=draws,
            )
            tally.add(f, actual, today.day)


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def run(
    variant: str, seeds: int, draws: int, ledger: Series | None, first_seed: int = 0, only: str | None = None
) -> tuple[str, list[tuple[str, Tally]]]:
    """Backtest every scenario with the variant's constants patched into the module (restored after)."""
    saved = {name: getattr(fc, name) for name in VARIANTS[variant]}
    for name, value in VARIANTS[variant].items():
        setattr(fc, name, value)
    try:
        params = ", ".join(f"{name.lower()}={getattr(fc, name)}" for name in TUNABLES if hasattr(fc, name))
        rows = []
        for cold in (False, True):
            for name, make in SCENARIOS.items():
                if only and only not in (f"{name}, cold start" if cold else name):
                    continue
                tally = Tally()
                if ledger is not None and name.startswith("ledger"):
                    name = "ledger (replayed)"
                    backtest(ledger, tally, random.Random(0), draws, cold)
                else:
                    for s in range(first_seed, first_seed + seeds):
                        rng = random.Random(1000 * s + len(name))
                        start = date(2023, 1, 2) + timedelta(days=37 * s)
                        backtest(make(rng, start), tally, rng, draws, cold)
                rows.append((f"{name}, cold start" if cold else name, tally))
        return params, rows
    finally:
        for name, value in saved.items():
            setattr(fc, name, value)


def markdown(title: str, rows: list[tuple[str, Tally]]) -> str:
    lines = [
        f"**{title}**",
        "",
        "| scenario | forecasts | method | in [P10, P90] | below P10 | above P90 "
        "| in band on days 1-10 / 11-20 / 21+ (%) | in band from day 10 on | same, users who have spent "
        "| day-10 median abs P50 error |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name, t in rows:
        methods = ", ".join(f"{m} {pct(c, t.n)}" for m, c in sorted(t.methods.items(), key=lambda kv: -kv[1]))
        parts = " / ".join(f"{100 * i / n:.0f}" if n else "-" for i, n in t.by_part)
        err = f"{100 * statistics.median(t.day10_errors):.1f} %" if t.day10_errors else "-"
        lines.append(
            f"| {name} | {t.n} | {methods} | {pct(t.inside, t.n)} | {pct(t.below, t.n)} "
            f"| {pct(t.above, t.n)} | {parts} | {pct(*t.from_day10)} | {pct(*t.spent_from_day10)} | {err} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, 500 draws")
    ap.add_argument("--ledger", metavar="PATH", help="an agentmeter ledger (sqlite) to replay")
    ap.add_argument(
        "--variant", choices=sorted(VARIANTS), action="append", help="weights to test (repeatable; default: current)"
    )
    ap.add_argument("--draws", type=int, help="bootstrap draws per forecast (default 2000, quick 500)")
    ap.add_argument("--seeds", type=int, help="synthetic histories per scenario (default 12, quick 2)")
    ap.add_argument(
        "--first-seed",
        type=int,
        default=100,
        help="first synthetic history (default 100: the held-out seeds the results are reported on; "
        "tune on others, e.g. --first-seed 0)",
    )
    ap.add_argument("--only", metavar="TEXT", help="only the scenarios whose name contains TEXT (e.g. 'cold')")
    args = ap.parse_args()
    seeds = args.seeds or (2 if args.quick else 12)
    draws = args.draws or (500 if args.quick else 2000)
    ledger = read_ledger(args.ledger) if args.ledger else None
    if ledger is not None and len(ledger) < WARMUP_DAYS + 28:
        print(f"ledger has {len(ledger)} days; need {WARMUP_DAYS + 28}+ to backtest a month", file=sys.stderr)
        ledger = None
    source = (
        f"ledger row replayed from {args.ledger}"
        if ledger is not None
        else ("no ledger replayed (no --ledger, or too short): the 'ledger' row is a synthetic mix of the patterns")
    )
    out = []
    for variant in args.variant or ["current"]:
        t0 = time.perf_counter()
        params, rows = run(variant, seeds, draws, ledger, args.first_seed, args.only)
        took = time.perf_counter() - t0
        span = f"seeds {args.first_seed}-{args.first_seed + seeds - 1}"
        out.append(markdown(f"{variant}: {params}; {span} x {DAYS} days, {draws} draws, {math.ceil(took)} s", rows))
    print("\n\n".join([*out, source]))


if __name__ == "__main__":
    main()
