"""Team caps: the collector holds caps per team and per developer; a client fetches them on sync and applies
the stricter of those and its own — in status (shown as such), `budget show`, and the proxy's refusals."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from agentmeter.core.clock import SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.home.config import Budget, Caps, Config, Identity, Sync
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from agentmeter.sync import background
from agentmeter.sync.caps import cap_sources, effective_budget
from conftest import make_stack, run_cli

from .helpers import Collector, request


def test_effective_budget_takes_the_stricter_cap():
    mine = Config(budget=Budget(caps=Caps(daily_usd=20.0, monthly_usd=300.0)))
    caps = {
        "team": {"name": "payments", "daily_usd": 10.0, "monthly_usd": 500.0},
        "developer": {"name": "alice", "weekly_tokens": 1000},
    }
    eff = effective_budget(mine, caps).caps
    assert (eff.daily_usd, eff.weekly_usd, eff.monthly_usd, eff.weekly_tokens) == (10.0, None, 300.0, 1000)
    assert cap_sources(mine, caps) == {
        "daily_usd": "team payments",
        "monthly_usd": "personal",
        "weekly_tokens": "developer",
    }
    assert effective_budget(mine, {}) is mine.budget
    assert effective_budget(mine, {"team": {"daily_usd": "junk", "weekly_usd": -1}}) is mine.budget


def test_caps_fetched_by_sync_show_in_status_and_budget_show(tmp_path, home, collector_db):
    collector = Collector(collector_db).start()
    try:
        token = collector.token("alice@example.com", team="payments")
        admin = collector.token("lead@example.com", admin=True)
        caps_set = run_cli(
            "collector",
            "caps",
            "set",
            "--db",
            str(collector.db),
            "--team",
            "payments",
            "--daily",
            "2",
            "--monthly",
            "900",
            "--json",
        )
        assert caps_set.returncode == 0, caps_set.stderr
        status, body, _ = request(
            f"{collector.url}/v1/caps",
            method="PUT",
            token=admin,
            body={"scope": "developer", "name": "alice@example.com", "weekly_usd": 7},
        )
        assert status == 200, body
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            '[identity]\ndeveloper = "alice@example.com"\n\n'
            '[budget]\ntimezone = "UTC"\ndaily_usd = 5.0\nmonthly_usd = 100.0\n'
        )
        ledger = open_ledger(get_paths().ensure().ledger)
        ledger.insert_request(
            RequestRecord(
                request_id="r1",
                session_id=None,
                started_at_ms=SystemClock().now_ms(),
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/messages",
                model_requested="claude-sonnet-4-6",
                model_used="claude-sonnet-4-6",
                stream=False,
                status="ok",
                http_status=200,
                usage=Usage(input_tokens=10, output_tokens=10),
                cost_usd=1.9,
                agent="claude",
            )
        )
        ledger.close()

        env = {"AGENTMETER_COLLECTOR_URL": collector.url, "AGENTMETER_COLLECTOR_TOKEN": token}
        r = run_cli("sync", "--json", env=env)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["schema"] == "agentmeter.sync/1" and out["ok"] and out["pushed"]["rollups"] == 1
        assert out["effective_caps"] == {"daily_usd": 2.0, "weekly_usd": 7.0, "monthly_usd": 100.0}
        assert out["cap_sources"] == {
            "daily_usd": "team payments",
            "weekly_usd": "developer",
            "monthly_usd": "personal",
        }

        st = json.loads(run_cli("status", "--json", env=env).stdout)
        day, week, month = st["windows"]
        assert (day["cap_usd"], day["cap_source"], day["stage"]) == (2.0, "team payments", "downgrade")
        assert (week["cap_usd"], week["cap_source"]) == (7.0, "developer")
        assert (month["cap_usd"], month["cap_source"]) == (100.0, "personal")
        assert st["sync"]["state"].startswith("ok, last push") and "team payments" in st["sync"]["state"]
        text = run_cli("status", env=env).stdout
        sync_lines = [ln for ln in text.splitlines() if ln.startswith("sync:")]
        assert len(sync_lines) == 1 and "$2.00 (team payments)" in sync_lines[0]

        shown = json.loads(run_cli("budget", "show", "--json").stdout)
        assert {w["name"]: w["cap_usd"] for w in shown["windows"]}["day"] == 2.0
    finally:
        collector.close()


def test_the_proxy_refuses_at_the_team_cap(tmp_path, monkeypatch, collector_db):
    collector = Collector(collector_db).start()
    admin = collector.token("lead@example.com", admin=True)
    monkeypatch.setenv("AGENTMETER_COLLECTOR_TOKEN", collector.token("alice@example.com", team="payments"))
    config = Config(
        identity=Identity(developer="alice@example.com"),
        budget=Budget(timezone="UTC", caps=Caps(daily_usd=100.0)),
        sync=Sync(collector=collector.url, interval_seconds=3600),
    )
    stack, close = make_stack(tmp_path, config=config)
    try:
        s = stack.open_session(agent="claude")
        url = s["anthropic"] + "/v1/messages"
        body = json.dumps(
            {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
        ).encode()

        def post() -> int:
            req = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={
                    "content-type": "application/json",
                    "x-api-key": "sk-ant-test-0000",
                    "anthropic-version": "2023-06-01",
                },
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert post() == 200 and post() == 200  # the personal $100 cap is far away
        assert (
            request(
                f"{collector.url}/v1/caps",
                method="PUT",
                token=admin,
                body={"scope": "team", "name": "payments", "daily_usd": 0.001},
            )[0]
            == 200
        )
        # The daemon's own periodic sync step (run here at once instead of after its interval).
        result = background._cycle(stack.state)
        assert result["ok"] and result["caps"]["team"]["daily_usd"] == 0.001
        assert post() == 429
        assert stack.rows()[-1]["decision"] == "refuse"
    finally:
        close()
        collector.close()
