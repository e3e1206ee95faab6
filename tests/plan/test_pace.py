"""The plan-window pace forecast's band when the pace is rising (benchmarks/plan_pace_backtest.py, accelerating)."""

from __future__ import annotations

from agentmeter.plan.pace import forecast
from agentmeter.plan.shares import Point

NOW = 1_750_000_000
RESETS = NOW + 4 * 3600


def readings(step) -> list[Point]:
    """A reading a minute over the last hour (the lookback of a 5-hour window); `step(i)` points each."""
    used, out = 20.0, []
    for i in range(61):
        out.append(Point((NOW - 3600 + i * 60) * 1000, used, RESETS))
        used += step(i)
    return out


def test_a_rising_pace_brings_the_early_end_of_the_band_forward():
    # The same 30 points in the hour: evenly, or 7.5 in the first half hour and 22.5 in the second.
    steady = forecast(readings(lambda i: 0.5), NOW, 5 * 3600)
    rising = forecast(readings(lambda i: 0.25 if i < 30 else 0.75), NOW, 5 * 3600)
    assert steady.runs_out_at is not None and rising.runs_out_at is not None and steady.early and rising.early
    # The median holds the hour's pace either way; the pessimistic end follows the later, faster half
    # going on rising: before the faster half's own run-out time, not at the hour's average pace.
    assert abs(rising.runs_out_at - steady.runs_out_at) < 120
    faster_half_out = NOW + (100 - 50) / 45 * 3600  # 50 % used, 45 points an hour
    assert rising.early < faster_half_out < steady.early


def test_the_band_holds_the_backtests_run_outs_about_four_times_in_five():
    """benchmarks/plan_pace_backtest.py at a small size (120 windows per scenario) on seeds it was not tuned on:
    the band [early, late] holds when the window really ran out in 75-88 % of the forecasts for steady, bursty
    and accelerating work. Before the two ends were widened apart, accelerating held 72 % here: the early end
    came too late for a pace that speeds up."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import plan_pace_backtest as bt

    for k, kind in enumerate(("steady", "bursty", "accelerating")):
        t = bt.Tally()
        for seed in (600, 700):
            bt.run(kind, 60, t, seed + k)
        assert t.n > 400
        assert 0.75 <= t.inside / t.n <= 0.88, (kind, t.inside / t.n)
