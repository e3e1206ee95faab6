"""The commands a team lead and a developer type, and the daemon's background push."""

from __future__ import annotations

import csv
import io
import json
import socket
import time
import urllib.request

from agentmeter.core.clock import SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.home.config import Config, Identity, Sync
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from agentmeter.sync import background
from conftest import make_stack, run_cli

from .helpers import Collector, request


def seed_home(n: int, cost: float = 0.5) -> None:
    ledger = open_ledger(get_paths().ensure().ledger)
    now = SystemClock().now_ms()
    ledger.create_session(
        {
            "id": "s1",
            "token_hash": "h1",
            "agent": "codex",
            "repo": "github.com/acme/api",
            "started_at": now,
            "cwd": "/tmp/x",
        }
    )
    for i in range(n):
        ledger.insert_request(
            RequestRecord(
                request_id=f"r{now}-{i}",
                session_id="s1",
                started_at_ms=now + i,
                provider="openai",
                api="responses",
                method="POST",
                path="/v1/responses",
                model_requested="gpt-5.1",
                model_used="gpt-5.1",
                stream=True,
                status="ok",
                http_status=200,
                usage=Usage(input_tokens=1000, cache_read_tokens=4000, output_tokens=200),
                cost_usd=cost,
                agent="codex",
                repo="github.com/acme/api",
            )
        )
    ledger.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_collector_is_one_quiet_line_in_status(home):
    seed_home(3)
    env = {"AGENTMETER_COLLECTOR_URL": f"http://127.0.0.1:{free_port()}", "AGENTMETER_COLLECTOR_TOKEN": "amc_x"}
    r = run_cli("sync", env=env)
    assert r.returncode == 1 and "not synced: cannot reach the collector" in r.stdout
    assert "2 rows stay queued" in r.stdout  # one daily row and one session
    st = json.loads(run_cli("status", "--json", env=env).stdout)["sync"]
    assert st["failures"] == 1 and st["pending"] == 2 and st["failing_since"] and st["next_attempt_at"]
    text = run_cli("status", env=env)
    assert text.returncode == 0 and text.stderr == ""
    lines = [ln for ln in text.stdout.splitlines() if "collector" in ln]
    assert len(lines) == 1 and lines[0].startswith("sync: collector unreachable since")
    assert "2 rows queued, retrying in the background" in lines[0]


def test_team_lead_commands(tmp_path, home, collector_db):
    db = collector_db
    add = run_cli(
        "collector", "token", "add", "--developer", "alice@example.com", "--team", "payments", "--db", str(db)
    )
    assert add.returncode == 0, add.stderr
    token = add.stdout.strip()
    assert token.startswith("amc_") and "shown only this once" in add.stderr
    collector = Collector(db).start()
    try:
        seed_home(4, cost=0.25)
        env = {"AGENTMETER_COLLECTOR_URL": collector.url, "AGENTMETER_COLLECTOR_TOKEN": token}
        r = run_cli("sync", env=env)
        assert r.returncode == 0 and "1 daily rows, 1 sessions pushed" in r.stdout, r.stdout + r.stderr

        rep = run_cli("collector", "report", "--db", str(db), "--by", "team", "--json")
        data = json.loads(rep.stdout)
        assert data["schema"] == "agentmeter.collector_report/1"
        assert [(x["key"], x["requests"], x["cost_usd"]) for x in data["rows"]] == [("payments", 4, 1.0)]
        assert "payments" in run_cli("collector", "report", "--db", str(db), "--by", "team").stdout
        admin = collector.token("lead@example.com", admin=True)
        keys = {"developer": "alice@example.com", "agent": "codex", "repo": "github.com/acme/api", "model": "gpt-5.1"}
        for by in ("developer", "agent", "repo", "model", "day"):
            status, body, _ = request(f"{collector.url}/v1/report?by={by}", token=admin)
            assert status == 200 and len(body["rows"]) == 1 and body["rows"][0]["cost_usd"] == 1.0, (by, body)
            assert body["rows"][0]["key"] == keys.get(by, body["rows"][0]["key"])

        focus = run_cli("collector", "export", "--db", str(db), "--format", "focus")
        rows = list(csv.DictReader(io.StringIO(focus.stdout)))
        assert {r["x_TokenType"] for r in rows} == {"input", "cache_read", "output"}
        assert abs(sum(float(r["BilledCost"]) for r in rows) - 1.0) < 1e-9
        assert all(
            r["ServiceCategory"] == "AI and Machine Learning"
            and r["PricingUnit"] == "1000000 Tokens"
            and r["ChargeCategory"] == "Usage"
            and r["BillingCurrency"] == "USD"
            for r in rows
        )
        assert {r["x_Developer"] for r in rows} == {"alice@example.com"} and rows[0]["SkuId"] == "gpt-5.1"
        as_json = run_cli("collector", "export", "--db", str(db), "--json")  # streamed, one row at a time
        doc = json.loads(as_json.stdout)
        assert as_json.returncode == 0 and doc["schema"] == "agentmeter.export/1"
        assert [(r["x_TokenType"], r["SkuId"]) for r in doc["rows"]] == [(r["x_TokenType"], r["SkuId"]) for r in rows]
        assert abs(sum(r["BilledCost"] for r in doc["rows"]) - 1.0) < 1e-9
        status, body, _ = request(f"{collector.url}/v1/export/focus?format=json", token=admin)
        assert status == 200 and len(body["rows"]) == len(rows)
    finally:
        collector.close()


def test_the_daemon_pushes_in_the_background(tmp_path, monkeypatch, collector_db):
    collector = Collector(collector_db).start()
    monkeypatch.setenv("AGENTMETER_COLLECTOR_TOKEN", collector.token("alice@example.com"))
    monkeypatch.setattr(background, "FIRST_DELAY_S", 0.05)
    config = Config(
        identity=Identity(developer="alice@example.com"), sync=Sync(collector=collector.url, interval_seconds=1)
    )
    stack, close = make_stack(tmp_path, config=config)
    try:
        s = stack.open_session(agent="claude", repo="github.com/acme/app")
        for _ in range(3):
            req = urllib.request.Request(
                s["anthropic"] + "/v1/messages",
                method="POST",
                data=json.dumps(
                    {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
                ).encode(),
                headers={"content-type": "application/json", "x-api-key": "sk-ant-test-0000"},
            )
            urllib.request.urlopen(req, timeout=10).read()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and collector.totals()["requests"] < 3:
            time.sleep(0.2)
        totals = collector.totals()
        assert totals["requests"] == 3 and totals["sessions"] == 1
        ledger_cost = sum(r["cost_usd"] for r in stack.rows())
        assert abs(totals["cost_usd"] - ledger_cost) < 1e-9
    finally:
        close()
        collector.close()
