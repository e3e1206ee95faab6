"""The ledger on real SQLite files: migrations, idempotent inserts, the rollup, the writer thread."""

from __future__ import annotations

import dataclasses
import sqlite3
import stat
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmeter.core.models import RequestRecord, Usage
from agentmeter.ledger import LedgerWriter, open_ledger
from agentmeter.ledger.migrations import migrations
from agentmeter.ledger.schema import TOKEN_COLUMNS

BASE_MS = 1_763_900_000_000  # 2025-11-23


def rec(i: int, **kw) -> RequestRecord:
    fields = dict(
        request_id=f"r{i}",
        session_id="s1",
        started_at_ms=BASE_MS + i * 3_600_000,
        provider="anthropic",
        api="messages",
        method="POST",
        path="/v1/messages",
        model_requested="claude-sonnet-4-5",
        model_used="claude-sonnet-4-5",
        stream=True,
        status="ok",
        http_status=200,
        usage=Usage(
            input_tokens=10 + i, cache_read_tokens=100, cache_write_tokens=5, cache_write_5m_tokens=5, output_tokens=7
        ),
        cost_usd=0.01 * (i + 1),
        price_source="genai-prices",
        agent="claude",
        repo="github.com/acme/w",
    )
    fields.update(kw)
    return RequestRecord(**fields)


def test_migrations_apply_to_an_empty_db_and_are_recorded(tmp_path):
    lg = open_ledger(tmp_path / "l.db")
    names = [r[0] for r in lg.conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names == [m.name for m in migrations._migrations]
    tables = {r[0] for r in lg.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"requests", "sessions", "usage_daily", "meta"} <= tables
    strict = lg.conn.execute("SELECT sql FROM sqlite_master WHERE name='requests'").fetchone()[0]
    assert strict.rstrip().endswith("STRICT")
    lg.close()
    open_ledger(tmp_path / "l.db").close()  # re-opening applies nothing twice
    assert stat.S_IMODE((tmp_path / "l.db").stat().st_mode) == 0o600
    assert lg.conn  # keep reference


def test_token_columns_are_the_usage_fields():
    # ledger/schema.py spells the buckets out so the read path need not build models' dataclasses;
    # a bucket added to Usage without its column would be dropped on insert.
    assert tuple(f.name for f in dataclasses.fields(Usage)) == TOKEN_COLUMNS


def test_wal_mode(tmp_path):
    lg = open_ledger(tmp_path / "l.db")
    assert lg.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_request_id_counts_once(tmp_path):
    lg = open_ledger(tmp_path / "l.db")
    assert lg.insert_request(rec(1)) is True
    assert lg.insert_request(rec(1)) is False
    assert lg.totals_from_requests()["requests"] == 1
    assert sum(r["requests"] for r in lg.rollup()) == 1


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 10_000), st.sampled_from(["ok", "partial", "error"])),
        min_size=1,
        max_size=40,
    )
)
def test_rollup_equals_requests(tmp_path_factory, rows):
    lg = open_ledger(tmp_path_factory.mktemp("l") / "l.db")
    for i, (hour, out, status) in enumerate(rows):
        lg.insert_request(
            rec(
                i,
                started_at_ms=BASE_MS + hour * 3_600_000,
                status=status,
                usage=Usage(input_tokens=i, output_tokens=out),
                cost_usd=out / 1e6,
            )
        )
    totals = lg.totals_from_requests()
    roll = lg.rollup()
    for col in ("input_tokens", "output_tokens"):
        assert sum(r[col] for r in roll) == totals[col]
    assert sum(r["cost_usd"] for r in roll) == pytest.approx(totals["cost_usd"])
    assert sum(r["requests"] for r in roll) == totals["requests"]


def test_rollup_day_follows_the_configured_time_zone(tmp_path):
    # 23:30 UTC on 2025-11-23 is already the 24th in Tokyo.
    ms = 1_763_940_600_000
    lg = open_ledger(tmp_path / "l.db", tz=ZoneInfo("Asia/Tokyo"))
    lg.insert_request(rec(1, started_at_ms=ms))
    assert [r["day"] for r in lg.rollup()] == ["2025-11-24"]
    lg2 = open_ledger(tmp_path / "l2.db", tz=ZoneInfo("America/New_York"))
    lg2.insert_request(rec(1, started_at_ms=ms))
    assert [r["day"] for r in lg2.rollup()] == ["2025-11-23"]


def test_reprice_updates_rows_and_rollup(tmp_path):
    lg = open_ledger(tmp_path / "l.db")
    for i in range(3):
        lg.insert_request(rec(i))
    result = lg.reprice(lambda row: (1.0, "override", "m", None, False, None))
    assert result["changed"] == 3 and result["rows"] == 3
    assert lg.totals_from_requests()["cost_usd"] == pytest.approx(3.0)
    assert sum(r["cost_usd"] for r in lg.rollup()) == pytest.approx(3.0)


def test_writer_batches_and_isolates_a_bad_item(tmp_path):
    w = LedgerWriter(tmp_path / "l.db").start()
    futs = [w.record(rec(i)) for i in range(200)]
    bad = w.submit(lambda lg: lg.conn.execute("INSERT INTO nope VALUES (1)"))
    futs += [w.record(rec(i)) for i in range(200, 210)]
    assert all(f.result(10) is not None for f in futs)
    with pytest.raises(sqlite3.OperationalError):
        bad.result(10)
    w.close()
    lg = open_ledger(tmp_path / "l.db", readonly=True)
    assert lg.totals_from_requests()["requests"] == 210
    assert w.batches < 210  # batched, not one commit per row


def test_readonly_open_of_a_missing_ledger_reads_empty(tmp_path):
    lg = open_ledger(tmp_path / "missing.db", readonly=True)
    assert lg.sessions() == [] and lg.rollup() == []
    assert not (tmp_path / "missing.db").exists()
