"""Forecast: projected end-of-window spend from the daily history (pure; fixed dates, seeded)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmeter.budget.forecast import RUN_RATE_P10, RUN_RATE_P90, forecast
from agentmeter.budget.windows import window

FRIDAY = date(2025, 5, 16)
MONDAY = FRIDAY - timedelta(days=4)
SUNDAY = FRIDAY + timedelta(days=2)


def daily(today: date, days: int, spend) -> dict[date, float]:
    """`days` completed days before `today`, spend(day) each."""
    return {today - timedelta(days=k): spend(today - timedelta(days=k)) for k in range(1, days + 1)}


def noisy(seed: int, mean: float = 10.0):
    rng = random.Random(seed)
    return lambda d: mean * rng.uniform(0.5, 1.5)


def workweek(d: date) -> float:
    return 10.0 if d.weekday() < 5 else 0.0


def test_steady_spend_projects_rate_times_remaining_days():
    today = date(2025, 5, 10)
    f = forecast(
        daily(today, 60, lambda d: 10.0),
        today=today,
        window_first=date(2025, 5, 1),
        window_last=date(2025, 5, 31),
        spent_in_window=95.0,
        today_fraction=0.5,
    )
    assert f.method == "bootstrap"
    assert f.burn_rate_per_day == pytest.approx(10.0)
    assert f.p50 == pytest.approx(95.0 + 10.0 * 21.5)  # rest of today + 21 days
    assert f.p10 <= f.p50 <= f.p90
    assert f.days_of_history == 60


def test_noisy_steady_spend_has_ordered_bands_around_the_rate():
    today = date(2025, 5, 10)
    f = forecast(
        daily(today, 90, noisy(1)),
        today=today,
        window_first=date(2025, 5, 1),
        window_last=date(2025, 5, 31),
        spent_in_window=95.0,
        today_fraction=0.5,
    )
    expected = 95.0 + f.burn_rate_per_day * 21.5
    assert f.p50 == pytest.approx(expected, rel=0.05)
    assert 95.0 < f.p10 < f.p50 < f.p90
    assert f.p90 - f.p10 > 0.05 * (f.p50 - 95.0)  # noise shows as a band, not a point


def test_friday_forecast_for_a_week_ending_sunday_expects_no_weekend_spend():
    # Weekdays $10, weekends idle: on Friday at noon, $45 spent this week. A flat run-rate (~$7/day)
    # would add ~$17, a weekday-blind one $25; only the rest of Friday (~$5) should be added.
    f = forecast(
        daily(FRIDAY, 8 * 7, workweek),
        today=FRIDAY,
        window_first=MONDAY,
        window_last=SUNDAY,
        spent_in_window=45.0,
        today_fraction=0.5,
    )
    assert f.method == "bootstrap"
    assert f.p50 == pytest.approx(50.0, abs=0.5)
    assert f.p90 < 55.0
    assert f.p10 >= 45.0


def test_recent_doubling_pulls_the_projection_towards_the_new_level():
    # $10/day, then $20/day for the last two weeks. With a 14-day half-life those two weeks weigh half,
    # so the projection sits half way, well above the plain mean; a 7-day half-life follows faster.
    today = date(2025, 5, 10)
    history = daily(today, 90, lambda d: 20.0 if (today - d).days <= 14 else 10.0)
    plain_mean = sum(history.values()) / len(history)  # ~11.6/day
    kwargs = dict(
        today=today, window_first=today, window_last=today + timedelta(days=13), spent_in_window=0.0, today_fraction=0.0
    )
    f = forecast(history, **kwargs)
    assert f.burn_rate_per_day == pytest.approx(15.0, abs=0.2)
    # Half way by the recency weights alone. A two-week step is a level shift, not a trend: the robust
    # (Theil-Sen) slope of the weekly totals does not extrapolate it, and the band reaches the new level.
    assert 14.0 < f.p50 / 14 < 20.0
    assert f.p50 / 14 > plain_mean + 2
    assert f.p90 / 14 > 20.0
    fast = forecast(history, **kwargs, half_life_days=7.0)
    assert abs(fast.p50 / 14 - 20.0) < abs(fast.p50 / 14 - 10.0)


def test_no_history_extrapolates_todays_pace():
    today = date(2025, 5, 10)
    f = forecast({}, today=today, window_first=today, window_last=today, spent_in_window=6.0, today_fraction=0.5)
    assert f.method == "run-rate"
    assert f.burn_rate_per_day == pytest.approx(12.0)
    assert f.p50 == pytest.approx(12.0)  # $6 in half a day -> $6 more
    assert (f.p10, f.p90) == pytest.approx((6.0 + RUN_RATE_P10 * 6.0, 6.0 + RUN_RATE_P90 * 6.0))
    month = forecast(
        {},
        today=today,
        window_first=date(2025, 5, 1),
        window_last=date(2025, 5, 31),
        spent_in_window=6.0,
        today_fraction=0.5,
    )
    assert month.p50 == pytest.approx(6.0 + 12.0 * 21.5)


def test_todays_pace_is_not_extrapolated_from_the_first_minutes():
    today = date(2025, 5, 10)
    f = forecast({}, today=today, window_first=today, window_last=today, spent_in_window=2.0, today_fraction=0.01)
    assert f.burn_rate_per_day == pytest.approx(8.0)  # $2 over at least a quarter day, not $200/day


def test_short_history_uses_a_run_rate_as_wide_as_its_days_vary():
    today = date(2025, 5, 10)
    kw = dict(
        today=today, window_first=today, window_last=today + timedelta(days=9), spent_in_window=0.0, today_fraction=0.0
    )
    f = forecast(daily(today, 5, lambda d: 10.0), **kw)
    assert f.method == "run-rate"
    assert f.days_of_history == 5
    # Five weekdays seen (Mon-Fri): the four weekend days ahead are expected at 0.75 x a weekday.
    assert f.p50 == pytest.approx(6 * 10.0 + 4 * 7.5)
    # Five identical days: a narrow band (issue 18: the fixed bands held 99 % of steady months).
    assert RUN_RATE_P10 * 100 < f.p10 < 100 < f.p90 < RUN_RATE_P90 * 100
    bumpy = forecast(daily(today, 5, lambda d: 4.0 if d.day % 2 else 16.0), **kw)
    assert bumpy.p10 < f.p10 and bumpy.p90 > f.p90  # days that vary widen it
    assert bumpy.p10 >= RUN_RATE_P10 * bumpy.p50 - 1e-9 and bumpy.p90 <= RUN_RATE_P90 * bumpy.p50 + 1e-9
    # Two identical days say little about how days vary: the prior keeps the band open, wider above (unseen
    # spikes) than below, but no wider than the fixed bands (the bands of a user with no history at all).
    two = forecast(daily(today, 2, lambda d: 10.0), **kw)
    assert RUN_RATE_P10 * two.p50 < two.p10 < f.p10 and f.p90 < two.p90 <= RUN_RATE_P90 * two.p50 + 1e-9
    assert two.p90 / two.p50 > two.p50 / two.p10


def test_a_noisy_rising_spend_is_extrapolated_and_the_outcome_stays_inside_the_band():
    # +3 %/week under day-to-day noise (the backtest's "trending" history), ten histories: a 2-SE shrink of
    # an 8-week least-squares slope (the first cut) kept little of the trend, so its P50 sat ~14 % under the
    # expected month (median) and the expected month fell outside P10-P90 in 3 of 10; 20 % of the backtest's
    # outcomes landed above P90.
    today = date(2025, 5, 1)
    start = today - timedelta(days=90)

    def level(d: date) -> float:
        return 8 * 1.03 ** ((d - start).days / 7)

    expected = sum(level(today + timedelta(days=k)) for k in range(31))
    ratios, inside = [], 0
    for seed in range(10):
        rng = random.Random(seed)
        history = {
            d: level(d) * rng.lognormvariate(-(0.35**2) / 2, 0.35)
            for d in (start + timedelta(days=k) for k in range(90))
        }
        f = forecast(
            history,
            today=today,
            window_first=today,
            window_last=date(2025, 5, 31),
            spent_in_window=0.0,
            today_fraction=0.0,
        )
        ratios.append(f.p50 / expected)
        inside += f.p10 < expected < f.p90
    assert 0.93 < sorted(ratios)[5] < 1.07
    assert inside >= 8


def test_one_spike_week_is_not_read_as_a_trend():
    today = date(2025, 5, 1)
    history = daily(today, 84, lambda d: 100.0 if 7 < (today - d).days <= 14 else 10.0)
    f = forecast(
        history,
        today=today,
        window_first=today,
        window_last=today + timedelta(days=13),
        spent_in_window=0.0,
        today_fraction=0.0,
    )
    assert f.p50 / 14 < 25.0  # the recency-weighted mean (~22/day), not a rise extrapolated from the spike


def test_nothing_at_all_forecasts_nothing():
    today = date(2025, 5, 10)
    f = forecast(
        {},
        today=today,
        window_first=date(2025, 5, 1),
        window_last=date(2025, 5, 31),
        spent_in_window=0.0,
        today_fraction=0.3,
        cap=100.0,
    )
    assert f.method == "none"
    assert (f.p10, f.p50, f.p90, f.burn_rate_per_day, f.time_to_cap_days) == (0.0, 0.0, 0.0, 0.0, None)


def test_idle_days_missing_from_the_history_count_as_zero():
    today = date(2025, 5, 10)
    every_day = daily(today, 60, lambda d: 10.0)
    every_other_day = {d: v for d, v in every_day.items() if (today - d).days % 2 == 0}
    first = min(every_day)
    every_other_day[first] = 10.0  # the history starts on the same day
    full = forecast(
        every_day, today=today, window_first=today, window_last=today, spent_in_window=0.0, today_fraction=0.0
    )
    gappy = forecast(
        every_other_day, today=today, window_first=today, window_last=today, spent_in_window=0.0, today_fraction=0.0
    )
    assert gappy.days_of_history == full.days_of_history == 60
    assert gappy.burn_rate_per_day == pytest.approx(5.0, rel=0.1)


def test_zero_filled_days_before_the_first_spend_are_not_history():
    # A caller that zero-fills an 8-week lookback for a user who started 20 days ago: still 20 days of
    # history, and the empty weeks before them do not read as idle weeks that widen the band.
    today = date(2025, 5, 10)
    used = daily(today, 20, lambda d: 0.2)
    padded = {**daily(today, 56, lambda d: 0.0), **used}
    a = forecast(used, today=today, window_first=today, window_last=today, spent_in_window=0.1, today_fraction=0.5)
    b = forecast(padded, today=today, window_first=today, window_last=today, spent_in_window=0.1, today_fraction=0.5)
    assert a == b
    assert b.days_of_history == 20
    assert b.p90 == pytest.approx(0.2, abs=0.01)


def test_month_window_on_its_first_day():
    today = date(2025, 5, 1)
    f = forecast(
        daily(today, 60, lambda d: 10.0),
        today=today,
        window_first=today,
        window_last=date(2025, 5, 31),
        spent_in_window=0.0,
        today_fraction=0.0,
    )
    assert f.p50 == pytest.approx(310.0)


@pytest.mark.parametrize("fraction", [1.0, 0.999])
def test_month_window_on_its_last_day_projects_what_is_spent(fraction):
    today = date(2025, 5, 31)
    f = forecast(
        daily(today, 90, noisy(2)),
        today=today,
        window_first=date(2025, 5, 1),
        window_last=today,
        spent_in_window=300.0,
        today_fraction=fraction,
    )
    assert f.p10 == pytest.approx(300.0, abs=0.05)
    assert f.p90 == pytest.approx(300.0, abs=0.05)
    if fraction == 1.0:
        assert f.p10 == f.p50 == f.p90 == 300.0


def test_dst_week_is_just_seven_dates():
    # The week of 2025-03-30 lasts 167 hours in Berlin; the forecast sees dates only, so it matches the
    # week before with the history shifted by seven days.
    tz = ZoneInfo("Europe/Berlin")
    dst_week = window("week", datetime(2025, 3, 27, 12, tzinfo=UTC), tz)
    week_before = window("week", datetime(2025, 3, 20, 12, tzinfo=UTC), tz)
    assert dst_week.end - dst_week.start == timedelta(hours=167)
    history = daily(date(2025, 3, 27), 70, noisy(3))
    shifted = {d - timedelta(days=7): v for d, v in history.items()}
    a = forecast(
        history,
        today=date(2025, 3, 27),
        window_first=dst_week.first_day,
        window_last=dst_week.last_day,
        spent_in_window=40.0,
        today_fraction=0.5,
        cap=100.0,
    )
    b = forecast(
        shifted,
        today=date(2025, 3, 20),
        window_first=week_before.first_day,
        window_last=week_before.last_day,
        spent_in_window=40.0,
        today_fraction=0.5,
        cap=100.0,
    )
    assert a == b


def test_same_seed_same_forecast_other_seed_other_draws():
    today = date(2025, 5, 10)
    history = daily(today, 90, noisy(4))
    kwargs = dict(
        today=today,
        window_first=date(2025, 5, 1),
        window_last=date(2025, 5, 31),
        spent_in_window=95.0,
        today_fraction=0.5,
    )
    assert forecast(history, **kwargs, seed=7) == forecast(dict(history), **kwargs, seed=7)
    assert forecast(history, **kwargs, seed=7).p50 != forecast(history, **kwargs, seed=8).p50


def test_time_to_cap_follows_the_p50_path():
    today = date(2025, 5, 10)
    steady = daily(today, 60, lambda d: 10.0)
    kwargs = dict(today=today, window_first=date(2025, 5, 1), window_last=date(2025, 5, 31), today_fraction=0.5)
    assert forecast(steady, **kwargs, spent_in_window=95.0, cap=120.0).time_to_cap_days == pytest.approx(2.5)
    assert forecast(steady, **kwargs, spent_in_window=95.0, cap=None).time_to_cap_days is None
    assert forecast(steady, **kwargs, spent_in_window=130.0, cap=120.0).time_to_cap_days == 0.0
    # beyond the window end: 21.5 days inside ($215) then 10 more days
    assert forecast(steady, **kwargs, spent_in_window=95.0, cap=410.0).time_to_cap_days == pytest.approx(31.5)


def test_time_to_cap_skips_idle_weekends():
    # Friday noon, weekdays $10: $15 more is the rest of Friday ($5), an idle weekend, Monday ($10).
    f = forecast(
        daily(FRIDAY, 8 * 7, workweek),
        today=FRIDAY,
        window_first=MONDAY,
        window_last=SUNDAY,
        spent_in_window=45.0,
        today_fraction=0.5,
        cap=60.0,
    )
    assert f.time_to_cap_days == pytest.approx(3.5, abs=0.1)


def test_run_rate_time_to_cap():
    today = date(2025, 5, 10)
    f = forecast(
        {}, today=today, window_first=today, window_last=today, spent_in_window=6.0, today_fraction=0.5, cap=30.0
    )
    assert f.time_to_cap_days == pytest.approx(2.0)  # $24 more at $12/day


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(0, 500), min_size=0, max_size=120),
    day=st.integers(1, 31),
    fraction=st.floats(0, 1),
    earlier=st.floats(0, 1000),
    seed=st.integers(0, 3),
)
def test_bands_are_ordered_and_never_below_what_is_spent(values, day, fraction, earlier, seed):
    today = date(2025, 1, day)
    history = {today - timedelta(days=k + 1): v for k, v in enumerate(values)}
    spent = earlier + 3.0 * fraction
    f = forecast(
        history,
        today=today,
        window_first=date(2025, 1, 1),
        window_last=date(2025, 1, 31),
        spent_in_window=spent,
        today_fraction=fraction,
        cap=500.0,
        draws=200,
        seed=seed,
    )
    assert spent <= f.p10 <= f.p50 <= f.p90
    assert f.method in ("bootstrap", "run-rate", "none")
    assert f.time_to_cap_days is None or f.time_to_cap_days >= 0
