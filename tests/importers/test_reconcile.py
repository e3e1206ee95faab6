"""`reconcile`: proxy against log per session and day, each difference with its known cause."""

from __future__ import annotations

import pytest

from agentmeter.commands.reconcile import reconcile
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.importers import import_logs
from agentmeter.importers.base import parse_ts
from agentmeter.ledger import open_ledger

from .crafted import claude_line, write


@pytest.fixture
def ledger(tmp_path):
    lg = open_ledger(tmp_path / "ledger.db")
    lg.create_session(
        {"id": "run1", "token_hash": "h1", "agent": "claude", "agent_session_id": "sess-1", "started_at": 0}
    )
    yield lg
    lg.close()


def live(
    ledger, rid: str, response_id: str | None, usage: Usage, status: str = "ok", at: str = "2026-01-01T00:00:00Z"
) -> None:
    ledger.insert_request(
        RequestRecord(
            request_id=rid,
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
            response_id=response_id,
            agent_session_id="sess-1",
            agent="claude",
        )
    )


def test_causes(ledger, tmp_path):
    u = Usage(input_tokens=100, output_tokens=10)
    live(ledger, "a", "msg_same", u)
    live(ledger, "b", "msg_short", Usage(input_tokens=100, output_tokens=25))  # the log wrote 10
    live(ledger, "c", "msg_cut", Usage(input_tokens=100, output_tokens=300), status="partial")
    live(ledger, "d", "msg_err", Usage(), status="error")
    live(ledger, "e", "msg_title", Usage(input_tokens=40, output_tokens=5))  # a background request, never logged
    root = tmp_path / "projects"
    write(
        root / "-w" / "sess-1.jsonl",
        [
            claude_line("msg_same", "r1"),
            claude_line("msg_short", "r2"),
            claude_line("msg_cut", "r3", out=120),
            claude_line("msg_outside", "r4", session="sess-9", ts="2026-01-02T08:00:00.000Z"),
        ],
    )
    out = reconcile(ledger, since_ms=None, paths={"claude": [root], "codex": [tmp_path / "none"]})
    [day1, day2] = out["groups"]
    assert (day1["session"], day1["day"]) == ("run1", "2026-01-01")
    assert day1["proxy"]["requests"] == 5 and day1["log"]["requests"] == 3
    assert day1["difference"]["output_tokens"] == (10 + 10 + 120) - (10 + 25 + 300 + 5)
    causes = {c["cause"]: c for c in day1["causes"]}
    assert set(causes) == {"aborted_stream", "provider_error", "log_undercount", "not_in_log"}
    assert causes["log_undercount"]["tokens"] == 15 and causes["not_in_log"]["count"] == 1
    assert day2["session"] == "sess-9" and [c["cause"] for c in day2["causes"]] == ["outside_agentmeter"]
    assert day2["causes"][0]["not_imported"] == 1

    # once imported, the response made outside is in the ledger but still not the proxy's
    import_logs("claude", ledger, [root])
    out = reconcile(ledger, since_ms=None, paths={"claude": [root], "codex": [tmp_path / "none"]})
    [_, day2] = out["groups"]
    assert day2["causes"][0]["not_imported"] == 0 and day2["proxy"]["requests"] == 0
    assert out["totals"]["difference"]["requests"] == -1

    only = reconcile(ledger, since_ms=None, session="sess-9", paths={"claude": [root], "codex": [tmp_path / "none"]})[
        "groups"
    ]
    assert [g["day"] for g in only] == ["2026-01-02"]
