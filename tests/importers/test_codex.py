"""Codex rollouts: cumulative counters, forks, records; each pitfall on a small crafted rollout."""

from __future__ import annotations

import pytest

from agentmeter.importers import import_logs
from agentmeter.ledger import open_ledger

from .crafted import codex_count, codex_meta, codex_record, codex_task, codex_turn, counts, write


@pytest.fixture
def ledger(tmp_path):
    lg = open_ledger(tmp_path / "ledger.db")
    yield lg
    lg.close()


def buckets(ledger, session: str | None = None) -> list[tuple]:
    sql = "SELECT input_tokens, cache_read_tokens, output_tokens, reasoning_tokens FROM requests"
    args = []
    if session:
        sql += " WHERE agent_session_id = ?"
        args.append(session)
    return [tuple(r) for r in ledger.conn.execute(sql + " ORDER BY started_at, import_key", args)]


def test_cumulative_counters_give_per_response_differences(ledger, tmp_path):
    t1, t2 = counts(1000, cached=800, out=50, reasoning=20), counts(2500, cached=2000, out=130, reasoning=20)
    f = write(
        tmp_path / "s" / "rollout-a.jsonl",
        [
            codex_meta("s-1"),
            codex_turn("gpt-5"),
            codex_count(t1, counts(1000, 800, 50, 20), ts="2026-01-01T00:00:02.000Z"),
            codex_count(t1, counts(1000, 800, 50, 20), ts="2026-01-01T00:00:02.000Z"),  # duplicate line: adds nothing
            codex_count(t2, counts(1500, 1200, 80, 0), ts="2026-01-01T00:00:09.000Z"),
            codex_count(None, None),  # rate-limit-only update
        ],
    )
    s = import_logs("codex", ledger, [f])
    # cached input is inside input; reasoning is inside output
    assert buckets(ledger) == [(200, 800, 50, 20), (300, 1200, 80, 0)]
    assert s.added == 2
    [sess] = ledger.sessions()
    assert (sess["agent"], sess["agent_session_id"]) == ("codex", "s-1")


def test_counter_reset_uses_the_last_response(ledger, tmp_path):
    f = write(
        tmp_path / "s" / "rollout-a.jsonl",
        [
            codex_meta("s-1"),
            codex_turn(),
            codex_count(counts(5000, out=100), counts(5000, out=100), ts="2026-01-01T00:00:02.000Z"),
            codex_count(counts(700, out=30), counts(700, out=30), ts="2026-01-01T00:00:05.000Z"),  # restarted
        ],
    )
    import_logs("codex", ledger, [f])
    assert buckets(ledger) == [(5000, 0, 100, 0), (700, 0, 30, 0)]


def test_rollout_without_totals_uses_last_usage(ledger, tmp_path):
    f = write(
        tmp_path / "s" / "rollout-a.jsonl",
        [
            codex_meta("s-1"),
            codex_turn(),
            codex_count(None, counts(100, out=5), ts="2026-01-01T00:00:02.000Z"),
            codex_count(None, counts(200, out=6), ts="2026-01-01T00:00:03.000Z"),
        ],
    )
    import_logs("codex", ledger, [f])
    assert buckets(ledger) == [(100, 0, 5, 0), (200, 0, 6, 0)]


def test_paginated_fork_subtracts_the_inherited_total(ledger, tmp_path):
    # Codex 0.169.0: the fork writes no parent lines, but its first total includes the parent's.
    parent = [
        codex_meta("parent"),
        codex_turn(),
        codex_count(counts(1000, out=10), counts(1000, out=10), ts="2026-01-01T00:00:02.000Z"),
        codex_count(counts(2100, out=30), counts(1100, out=20), ts="2026-01-01T00:00:04.000Z"),
    ]
    child = [
        codex_meta(
            "child",
            ts="2026-01-01T01:00:00.000Z",
            forked_from_id="parent",
            history_base={"thread_id": "parent", "end_ordinal_exclusive": 4},
        ),
        codex_turn(ts="2026-01-01T01:00:01.000Z"),
        codex_count(counts(3300, out=45), counts(1200, out=15), ts="2026-01-01T01:00:02.000Z"),
        codex_count(counts(4600, out=70), counts(1300, out=25), ts="2026-01-01T01:00:03.000Z"),
    ]
    write(tmp_path / "s" / "rollout-1-parent.jsonl", parent)
    write(tmp_path / "s" / "rollout-2-child.jsonl", child)
    import_logs("codex", ledger, [tmp_path / "s"])
    assert buckets(ledger, "parent") == [(1000, 0, 10, 0), (1100, 0, 20, 0)]
    assert buckets(ledger, "child") == [(1200, 0, 15, 0), (1300, 0, 25, 0)]


def test_legacy_fork_replaying_parent_history_counts_only_its_own(ledger, tmp_path):
    # Older rollouts: the child's session_meta, then the parent's (and its copied token_count lines,
    # stamped at fork time), then the child's own first task.
    fork_s = 1767229200  # 2026-01-01T01:00:00Z
    f = write(
        tmp_path / "s" / "rollout-child.jsonl",
        [
            codex_meta("child", ts="2026-01-01T01:00:00.000Z", forked_from_id="parent"),
            codex_meta("parent", ts="2026-01-01T00:00:00.000Z"),
            codex_task(fork_s - 3600, ts="2026-01-01T01:00:00.000Z"),
            codex_count(counts(1000, out=10), counts(1000, out=10), ts="2026-01-01T01:00:00.000Z"),
            codex_count(counts(2100, out=30), counts(1100, out=20), ts="2026-01-01T01:00:00.000Z"),
            codex_task(fork_s + 5, ts="2026-01-01T01:00:05.000Z"),
            codex_turn(ts="2026-01-01T01:00:05.000Z"),
            codex_count(counts(3300, out=45), counts(1200, out=15), ts="2026-01-01T01:00:07.000Z"),
        ],
    )
    s = import_logs("codex", ledger, [f])
    assert buckets(ledger) == [(1200, 0, 15, 0)]
    assert s.added == 1


def test_sub_agent_thread_spawn_is_a_fork(ledger, tmp_path):
    f = write(
        tmp_path / "s" / "rollout-sub.jsonl",
        [
            codex_meta("sub", source={"subagent": {"thread_spawn": {"parent_thread_id": "root"}}}),
            codex_turn(),
            codex_count(counts(9000, out=90), counts(500, out=5)),
        ],
    )
    import_logs("codex", ledger, [f])
    assert buckets(ledger) == [(500, 0, 5, 0)]


def test_records_are_used_and_token_counts_not_counted_twice(ledger, tmp_path):
    u1, u2 = counts(19200, cached=18000, out=58), counts(19300, cached=18000, out=60, reasoning=10)
    f = write(
        tmp_path / "s" / "rollout-a.jsonl",
        [
            codex_meta("s-1"),
            codex_turn("gpt-6.1-sol"),
            codex_record("s-1", "resp_1", u1),
            codex_count(u1, u1),
            codex_record("s-1", "resp_2", u2),
            codex_count(counts(38500, 36000, 118, 10), u2),
            # a response without a record (an older writer mid-file): the counter difference covers it
            codex_count(counts(39000, 36000, 120, 10), counts(500, 0, 2), ts="2026-01-01T00:00:09.000Z"),
        ],
    )
    import_logs("codex", ledger, [f])
    keys = [r[0] for r in ledger.conn.execute("SELECT import_key FROM requests ORDER BY started_at, import_key")]
    assert keys == ["codex:resp_1", "codex:resp_2", "codex:s-1:39120"]
    assert buckets(ledger) == [(1200, 18000, 58, 0), (1300, 18000, 60, 10), (500, 0, 2, 0)]


def test_record_copied_into_another_rollout_counts_once(ledger, tmp_path):
    u = counts(100, out=5)
    write(
        tmp_path / "s" / "rollout-1.jsonl", [codex_meta("p", ts="2026-01-01T00:00:00Z"), codex_record("p", "resp_x", u)]
    )
    write(
        tmp_path / "s" / "rollout-2.jsonl",
        [
            codex_meta("c", ts="2026-01-01T02:00:00Z"),
            codex_meta("p", ts="2026-01-01T00:00:00Z"),
            codex_record("p", "resp_x", u),
        ],
    )
    s = import_logs("codex", ledger, [tmp_path / "s"])
    assert s.added == 1 and buckets(ledger, "p") == [(100, 0, 5, 0)]


def test_archived_sessions_and_codex_home(ledger, tmp_path, monkeypatch):
    home = tmp_path / "codexhome"
    write(
        home / "sessions" / "2026" / "01" / "01" / "rollout-a.jsonl",
        [codex_meta("a"), codex_record("a", "resp_a", counts(10, out=1))],
    )
    write(
        home / "archived_sessions" / "rollout-b.jsonl",
        [codex_meta("b"), codex_record("b", "resp_b", counts(10, out=1))],
    )
    write(home / "sessions" / "notes.jsonl", [codex_meta("c"), codex_record("c", "resp_c", counts(10, out=1))])
    monkeypatch.setenv("CODEX_HOME", str(home))
    assert import_logs("codex", ledger).added == 2


def test_changed_rollout_is_read_again_without_double_counting(ledger, tmp_path):
    f = write(
        tmp_path / "s" / "rollout-a.jsonl",
        [codex_meta("s-1"), codex_turn(), codex_count(counts(100, out=5), counts(100, out=5))],
    )
    import_logs("codex", ledger, [f])
    with f.open("a") as fh:
        fh.write(codex_count(counts(250, out=9), counts(150, out=4), ts="2026-01-01T00:00:08.000Z") + "\n")
    s = import_logs("codex", ledger, [f])
    assert (s.added, s.already_imported) == (1, 1)
    assert buckets(ledger) == [(100, 0, 5, 0), (150, 0, 4, 0)]
