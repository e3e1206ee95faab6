"""The dollar forecast's cold start is calibrated (issue 18, item 7): a user who began 0-13 days before finds
the month's real total inside P10-P90 about four times in five, from day 10 of the month on.

Runs `benchmarks/forecast_backtest.py` itself (its scenario generators and its `backtest`) on seeds that were
neither used to tune the constants (0-11) nor to report them (100-111).
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

SEEDS = range(200, 212)


def cold_coverage(scenario: str) -> tuple[float, float, float]:
    """Share of the forecasts from day 10 on with the outcome inside [P10, P90], under P10, over P90."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import forecast_backtest as bt

    make = bt.SCENARIOS[scenario]
    tally = bt.Tally()
    for s in SEEDS:
        rng = random.Random(1000 * s + len(scenario))
        start = date(2023, 1, 2) + timedelta(days=37 * s)
        bt.backtest(make(rng, start), tally, rng, draws=200, cold=True)
    inside, n = tally.from_day10
    assert n > 2500  # about 130 months of forecasts from day 10 on
    assert tally.methods.get("bootstrap", 0) == 0  # all of it the cold-start path
    return inside / n, tally.below / tally.n, tally.above / tally.n


@pytest.mark.parametrize("scenario", ["steady", "spiky"])
def test_a_new_users_band_holds_the_month_about_four_times_in_five(scenario):
    # Before, on these seeds: steady 93.2 % (too wide to act on: one prior for everyone's first days), spiky
    # 74.3 % (a spike in the first days set the pace of the month; none, and the band missed the next one).
    inside, below, above = cold_coverage(scenario)
    assert 0.75 <= inside <= 0.85, (scenario, inside, below, above)


def test_the_other_new_users_stay_in_band_or_move_towards_it():
    # Weekday work with idle weekends stays in band (78.0 %; was 83.1 %). Not in band yet (benchmarks/RESULTS.md):
    # a rising spend, 88.4 % (was 93.4 %), and the synthetic mix with level shifts and idle weeks, 71.2 % (was
    # 62.2 %; about 7 % of its forecasts are for users who have spent nothing yet). Guard the gain.
    weekly, _, _ = cold_coverage("weekly")
    trending, _, _ = cold_coverage("trending")
    mix, _, _ = cold_coverage("ledger (synthetic mix)")
    assert 0.75 <= weekly <= 0.85, weekly
    assert trending <= 0.90, trending
    assert mix >= 0.68, mix
