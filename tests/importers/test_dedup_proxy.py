"""Never twice: responses the proxy already metered are matched, not added; imported rows enter the rollup."""

from __future__ import annotations

import pytest

from agentmeter.core.models import RequestRecord, Usage
from agentmeter.importers import import_logs
from agentmeter.importers.base import parse_ts
from agentmeter.ledger import open_ledger

from .crafted import claude_line, codex_count, codex_meta, codex_turn, counts, write

T0 = "2026-01-01T00:00:00.000Z"


@pytest.fixture
def ledger(tmp_path):
    lg = open_ledger(tmp_path / "ledger.db")
    lg.create_session(
        {
            "id": "run1",
            "token_hash": "h1",
            "agent": "claude",
            "agent_session_id": "sess-1",
            "repo": "github.com/acme/app",
            "branch": "main",
            "started_at": 0,
        }
    )
    yield lg
    lg.close()


def proxy_row(
    ledger,
    request_id: str,
    *,
    response_id: str | None,
    agent_session_id: str,
    at: str = T0,
    usage: Usage = Usage(input_tokens=100, output_tokens=10),
    agent: str = "claude",
    status: str = "ok",
) -> None:
    ledger.insert_request(
        RequestRecord(
            request_id=request_id,
            session_id="run1",
            started_at_ms=parse_ts(at),
            provider="anthropic",
            api="messages",
            method="POST",
            path="/v1/messages",
            model_requested="claude-sonnet-4-5",
            model_used="claude-sonnet-4-5",
            stream=True,
            status=status,
            http_status=200,
            usage=usage,
            cost_usd=0.001,
            response_id=response_id,
            agent_session_id=agent_session_id,
            agent=agent,
            repo="github.com/acme/app",
        )
    )


def test_matched_by_message_id(ledger, tmp_path):
    proxy_row(ledger, "amr_1", response_id="msg_1", agent_session_id="sess-1")
    f = write(tmp_path / "p" / "s.jsonl", [claude_line("msg_1", "req_1"), claude_line("msg_2", "req_2")])
    s = import_logs("claude", ledger, [f])
    assert (s.matched_proxy, s.added) == (1, 1)
    # the unmatched response joins the `run` session the proxy saw, with its repo
    row = ledger.conn.execute("SELECT * FROM requests WHERE source = 'claude-log'").fetchone()
    assert (row["session_id"], row["repo"], row["response_id"]) == ("run1", "github.com/acme/app", "msg_2")
    assert ledger.conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1


def test_matched_by_session_time_and_tokens_without_an_id(ledger, tmp_path):
    proxy_row(ledger, "amr_1", response_id=None, agent_session_id="sess-1", at="2026-01-01T00:02:00.000Z")
    f = write(
        tmp_path / "p" / "s.jsonl",
        [
            claude_line(None, None, uuid="x1", ts=T0),  # same session, within 5 min, same tokens: the same response
            claude_line(None, None, uuid="x2", ts=T0),  # identical again: the proxy row is already taken
            claude_line(None, None, uuid="x3", ts=T0, out=11),  # different tokens
        ],
    )
    s = import_logs("claude", ledger, [f])
    assert (s.matched_proxy, s.added) == (1, 2)


def test_not_matched_outside_the_window_or_other_session(ledger, tmp_path):
    proxy_row(ledger, "amr_1", response_id=None, agent_session_id="sess-1", at="2026-01-01T00:06:00.000Z")
    f = write(
        tmp_path / "p" / "s.jsonl",
        [claude_line(None, None, uuid="x1", ts=T0), claude_line(None, None, uuid="x2", ts=T0, session="other")],
    )
    assert import_logs("claude", ledger, [f]).added == 2


def test_a_partial_proxy_row_still_matches_its_message(ledger, tmp_path):
    # An aborted stream: the proxy estimated the output; the log has what the agent received. Not added.
    proxy_row(
        ledger,
        "amr_1",
        response_id="msg_1",
        agent_session_id="sess-1",
        status="partial",
        usage=Usage(input_tokens=100, output_tokens=400),
    )
    s = import_logs("claude", ledger, [write(tmp_path / "p" / "s.jsonl", [claude_line("msg_1", "req_1")])])
    assert (s.matched_proxy, s.added) == (1, 0)


def test_codex_rollout_matched_by_session_time_and_tokens(ledger, tmp_path):
    # Older rollouts carry no response ids: the live row (which has one) is found by session, time and tokens.
    proxy_row(
        ledger,
        "amr_1",
        response_id="resp_live",
        agent_session_id="s-9",
        agent="codex",
        at="2026-01-01T00:00:02.500Z",
        usage=Usage(input_tokens=200, cache_read_tokens=800, output_tokens=50),
    )
    f = write(
        tmp_path / "s" / "rollout-a.jsonl",
        [
            codex_meta("s-9"),
            codex_turn(),
            codex_count(counts(1000, 800, 50), counts(1000, 800, 50)),
            codex_count(counts(2000, 1600, 100), counts(1000, 800, 50), ts="2026-01-01T00:00:03.000Z"),
        ],
    )
    s = import_logs("codex", ledger, [f])
    assert (s.matched_proxy, s.added) == (1, 1)  # the second, identical response never went through the proxy


def test_an_id_never_matches_a_different_id(ledger, tmp_path):
    proxy_row(ledger, "amr_1", response_id="msg_other", agent_session_id="sess-1")
    s = import_logs("claude", ledger, [write(tmp_path / "p" / "s.jsonl", [claude_line("msg_1", "req_1")])])
    assert (s.matched_proxy, s.added) == (0, 1)


def test_imported_rows_enter_the_rollup_and_budget_windows(ledger, tmp_path):
    proxy_row(ledger, "amr_1", response_id="msg_1", agent_session_id="sess-1")
    f = write(tmp_path / "p" / "s.jsonl", [claude_line(f"msg_{i}", f"req_{i}") for i in range(1, 6)])
    import_logs("claude", ledger, [f])
    totals = ledger.totals_from_requests()
    roll = ledger.rollup()
    assert sum(r["requests"] for r in roll) == totals["requests"] == 5
    assert sum(r["input_tokens"] for r in roll) == totals["input_tokens"] == 500
    assert abs(sum(r["cost_usd"] for r in roll) - totals["cost_usd"]) < 1e-9
    usd, tokens = ledger.window_spend("2026-01-01", "2026-01-01", agent="claude")
    assert tokens == 550 and usd == pytest.approx(totals["cost_usd"])
    sources = dict(ledger.conn.execute("SELECT source, COUNT(*) FROM requests GROUP BY source").fetchall())
    assert sources == {"proxy": 1, "claude-log": 4}
