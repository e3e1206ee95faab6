"""One duration grammar (core parsing.duration_parts) for `--since 7d` (sessions, import, reprice, budget
dry-run and snooze) and for report/export windows: what one accepts, the other accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentmeter.commands import report as reports
from agentmeter.core.errors import UsageError
from agentmeter.core.parsing import parse_since

NOW = datetime(2025, 4, 2, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30m", timedelta(minutes=30)),
        (" 12h ", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2 w", timedelta(weeks=2)),
    ],
)
def test_a_duration_reads_the_same_everywhere(text, delta):
    assert parse_since(text) == delta
    window = reports.report_window(text, None, UTC, NOW)
    if text.strip()[-1] in "dw":  # whole local days: `7d` is the 7 days ending today
        assert window.first_day == NOW.date() - timedelta(days=delta.days - 1)
    else:  # the local day that instant falls in
        assert window.first_day == (NOW - delta).date()


@pytest.mark.parametrize("text", ["7", "d", "1.5h", "7 days", "-1d", "7y"])
def test_no_duration_is_refused_by_both(text):
    with pytest.raises(UsageError, match="bad duration"):
        parse_since(text)
    with pytest.raises(UsageError, match="bad --since"):
        reports.report_window(text, None, UTC, NOW)
