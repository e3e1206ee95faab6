"""Issue 16: one format per audience. Money for people is $0.0012 / $1.23 / $1,234; JSON and CSV carry the
exact value without binary noise; plurals read right; booleans are the same in every export."""

from __future__ import annotations

import csv
import io
import json

from agentmeter.core.clock import SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from agentmeter.render import usd
from conftest import run_cli


def seed(costs: list[float]) -> None:
    ledger = open_ledger(get_paths().ensure().ledger)
    now = SystemClock().now_ms()
    ledger.create_session({"id": "s1", "token_hash": "h", "agent": "claude", "started_at": now, "cwd": "/x"})
    for i, cost in enumerate(costs):
        ledger.insert_request(
            RequestRecord(
                request_id=f"r{i}",
                session_id="s1",
                started_at_ms=now + i,
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/messages",
                model_requested="claude-opus-4-8",
                model_used="claude-opus-4-8",
                stream=False,
                status="ok",
                http_status=200,
                usage=Usage(input_tokens=10, output_tokens=1),
                cost_usd=cost,
                agent="claude",
                subscription=i == 0,
            )
        )
    ledger.close()


def test_money_in_json_and_csv_has_no_float_noise(home):
    seed([0.1, 0.2])  # 0.1 + 0.2 == 0.30000000000000004 in binary floating point
    report = run_cli("report", "--by", "day", "--json").stdout
    assert "0000000000" not in report
    assert json.loads(report)["totals"]["cost_usd"] == 0.3
    assert "0000000000" not in run_cli("report", "--by", "day", "--format", "csv").stdout
    assert "0000000000" not in run_cli("status", "--json").stdout
    assert json.loads(run_cli("status", "--json").stdout)["today"]["spent_usd"] == 0.3


def test_money_for_people():
    assert [usd(v) for v in (0.0012, 1.234, 1234.5, 0)] == ["$0.0012", "$1.23", "$1,234", "$0.00"]


def test_booleans_match_across_exports(home):
    seed([0.1, 0.2])
    rows = list(csv.DictReader(io.StringIO(run_cli("export", "--format", "csv").stdout)))
    lines = [json.loads(x) for x in run_cli("export", "--format", "jsonl").stdout.splitlines()]
    doc = json.loads(run_cli("export", "--json").stdout)["rows"]
    for flag in ("subscription", "unpriced", "partial", "unmetered"):
        assert {r[flag] for r in rows} <= {"true", "false"}
        assert [r[flag] == "true" for r in rows] == [x[flag] for x in lines] == [x[flag] for x in doc]
    assert {r["subscription"] for r in rows} == {"true", "false"}


def test_plurals(home):
    seed([0.1])
    out = run_cli("status").stdout
    assert "1 session ·" in out and "1 request ·" in out
