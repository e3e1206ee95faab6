"""The team wallet (issue 20 item 4): caps over a team's pooled spend, published by the collector with the
team's spend, enforced by each member's proxy with its own live spend added — stricter wins, staleness shown."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from datetime import UTC, datetime

from agentmeter.budget.policy import WindowSpend
from agentmeter.core.models import Session
from agentmeter.home.config import Budget, Caps, Config, Identity
from agentmeter.ledger import sync as q
from agentmeter.ledger.access import WriterAccess
from agentmeter.sync.client import Target, sync_once
from agentmeter.sync.wallet import wallet_windows
from conftest import make_stack, run_cli

from .helpers import Client, Collector

ANTHROPIC = {"content-type": "application/json", "x-api-key": "sk-ant-test-0000", "anthropic-version": "2023-06-01"}
BODY = json.dumps(
    {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
).encode()


def post(session: dict) -> tuple[int, dict, dict]:
    req = urllib.request.Request(session["anthropic"] + "/v1/messages", data=BODY, method="POST", headers=ANTHROPIC)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def member(tmp_path, name: str, collector: Collector):
    # No [sync] collector in the config: the daemons' periodic loop (first run after 5 s) would pick up the
    # other member's token from the process-wide environment. Each member syncs explicitly below instead.
    config = Config(
        identity=Identity(developer=f"{name}@example.com", team="payments"),
        budget=Budget(timezone="UTC", caps=Caps(daily_usd=100.0)),
    )  # personal caps far away
    root = tmp_path / name
    root.mkdir()
    stack, close = make_stack(root, config=config)
    return stack, close, collector.token(f"{name}@example.com", team="payments")


def sync(stack, token: str, collector: Collector) -> dict:
    """What the daemon's periodic step does (sync/background._cycle), as this member: push and fetch the caps
    through its writer thread, then hand them to its enforcer."""
    state = stack.state
    access = WriterAccess(state.ledger_path, state.writer, tz=state.tz)
    try:
        result = sync_once(access, state.config, state.clock, tz=state.tz, target_=Target(collector.url, token))
        caps = access.read(q.team_caps)
    finally:
        access.close()
    assert result["ok"], result
    state.enforcer.team_caps = caps
    return result


def test_bob_fills_the_wallet_and_alices_next_request_is_refused(tmp_path, collector_db):
    collector = Collector(collector_db).start()
    alice, close_a, alice_token = member(tmp_path, "alice", collector)
    bob, close_b, bob_token = member(tmp_path, "bob", collector)
    try:
        a, b = alice.open_session(agent="claude"), bob.open_session(agent="claude")
        assert post(a)[0] == 200
        for _ in range(4):
            assert post(b)[0] == 200
        bob_spend = sum(r["cost_usd"] for r in bob.rows())
        alice_spend = sum(r["cost_usd"] for r in alice.rows())
        assert bob_spend > 0 and alice_spend > 0
        # A pooled daily wallet that Bob's spend alone has already filled past the refusal line (110 %), while
        # Alice's own spend is a small part of it and her personal cap is $100 away.
        cap = round(bob_spend / 1.2, 6)
        assert alice_spend < cap
        r = run_cli(
            "collector",
            "caps",
            "set",
            "--db",
            str(collector.db),
            "--team",
            "payments",
            "--pooled",
            "--daily",
            str(cap),
            "--json",
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["wallets"][0]["daily_usd"] == cap

        sync(bob, bob_token, collector)  # Bob's spend reaches the collector
        # Alice's proxy has not heard of the wallet yet: her request goes through.
        assert post(a)[0] == 200
        alice_spend = sum(r["cost_usd"] for r in alice.rows())
        result = sync(alice, alice_token, collector)
        assert result["caps"]["wallet"]["team"] == "payments"

        status, body, headers = post(a)
        assert status == 429, body
        assert headers.get("x-should-retry") == "false"
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        msg = body["error"]["message"]
        assert msg.startswith("agentmeter: the daily team wallet of payments") and '"' not in msg
        assert "spent by the team together" in msg and "ask your team lead" in msg
        row = alice.rows()[-1]
        assert row["decision"] == "refuse"
        # The pooled figure it refused on: Bob's spend from the collector + Alice's own, live.
        windows = alice.state.enforcer.windows(Session(id=a["session_id"], agent="claude", started_at_ms=0))
        win = next(w for w in windows if w.name == "wallet day")
        assert abs(win.spent_usd - (bob_spend + alice_spend)) < 1e-6
        assert win.source == "team wallet payments" and win.cap_usd == cap
    finally:
        close_a()
        close_b()
        collector.close()


def test_member_sub_cap_refuses_within_a_roomy_wallet(tmp_path, collector_db):
    collector = Collector(collector_db).start()
    alice, close_a, alice_token = member(tmp_path, "alice", collector)
    try:
        a = alice.open_session(agent="claude")
        assert post(a)[0] == 200
        spent = sum(r["cost_usd"] for r in alice.rows())
        for args in (["--pooled", "--daily", "1000"], ["--member", "*", "--daily", str(round(spent / 1.2, 6))]):
            r = run_cli("collector", "caps", "set", "--db", str(collector.db), "--team", "payments", *args)
            assert r.returncode == 0, r.stderr
        sync(alice, alice_token, collector)
        status, body, _ = post(a)
        assert status == 429 and "your daily share of the team wallet of payments" in body["error"]["message"]
        # A member's own sub-cap replaces the one for every member.
        r = run_cli(
            "collector",
            "caps",
            "set",
            "--db",
            str(collector.db),
            "--team",
            "payments",
            "--member",
            "alice@example.com",
            "--daily",
            "500",
        )
        assert r.returncode == 0, r.stderr
        sync(alice, alice_token, collector)
        assert post(a)[0] == 200
    finally:
        close_a()
        collector.close()


def _insert(home_ledger, cost: float) -> None:
    from agentmeter.core.clock import SystemClock
    from agentmeter.core.models import RequestRecord, Usage
    from agentmeter.ledger import open_ledger

    ledger = open_ledger(home_ledger)
    n = SystemClock().now_ms()
    ledger.insert_request(
        RequestRecord(
            request_id=f"r{n}-{cost}",
            session_id=None,
            started_at_ms=n,
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
            cost_usd=cost,
            agent="claude",
        )
    )
    ledger.close()


def test_status_and_budget_show_carry_the_wallet_and_its_staleness(tmp_path, home, collector_db):
    from agentmeter.home.paths import get_paths

    collector = Collector(collector_db).start()
    try:
        bob = collector.token("bob@example.com", team="payments")
        alice = collector.token("alice@example.com", team="payments")
        assert (
            run_cli(
                "collector", "caps", "set", "--db", str(collector.db), "--team", "payments", "--pooled", "--daily", "10"
            ).returncode
            == 0
        )
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            '[identity]\ndeveloper = "alice@example.com"\n\n[budget]\ntimezone = "UTC"\ndaily_usd = 50.0\n'
        )
        ledger_path = get_paths().ensure().ledger
        # Bob's machine: another home, its own ledger, $6 pushed.
        bob_home = tmp_path / "bob-home"
        env_b = {
            "AGENTMETER_HOME": str(bob_home),
            "AGENTMETER_COLLECTOR_URL": collector.url,
            "AGENTMETER_COLLECTOR_TOKEN": bob,
        }
        bob_home.mkdir()
        (bob_home / "config.toml").write_text('[identity]\ndeveloper = "bob@example.com"\n')
        import os

        os.environ["AGENTMETER_HOME"], saved = str(bob_home), os.environ["AGENTMETER_HOME"]
        try:
            _insert(get_paths().ensure().ledger, 6.0)
        finally:
            os.environ["AGENTMETER_HOME"] = saved
        assert run_cli("sync", env=env_b).returncode == 0

        _insert(ledger_path, 1.0)
        env = {"AGENTMETER_COLLECTOR_URL": collector.url, "AGENTMETER_COLLECTOR_TOKEN": alice}
        assert run_cli("sync", env=env).returncode == 0
        _insert(ledger_path, 2.0)  # after the fetch: counted live, never twice

        st = json.loads(run_cli("status", "--json").stdout)
        w = st["wallet"]
        assert w["team"] == "payments" and w["stale"] is False
        day = w["windows"][0]
        assert day["name"] == "wallet day" and day["cap_usd"] == 10.0 and abs(day["spent_usd"] - 9.0) < 1e-6
        assert day["stage"] == "alert" and day["source"] == "team wallet payments"
        text = run_cli("status").stdout
        assert "team wallet payments: the team's part is fresh" in text

        # Alice's push has reached the collector now: the next figure holds it, and it still counts once.
        assert run_cli("sync", env=env).returncode == 0
        again = json.loads(run_cli("status", "--json").stdout)["wallet"]["windows"][0]
        assert abs(again["spent_usd"] - 9.0) < 1e-6

        shown = json.loads(run_cli("budget", "show", "--json").stdout)
        rows = {r["name"]: r for r in shown["windows"]}
        assert abs(rows["wallet day"]["spent_usd"] - 9.0) < 1e-6 and rows["wallet day"]["cap_usd"] == 10.0
        assert shown["wallet"]["stale"] is False

        # An hour without a fresh figure: still enforced as last-known + own spend since, and said so.
        conn = sqlite3.connect(ledger_path)
        caps = json.loads(conn.execute("SELECT value FROM sync_state WHERE key = 'team_caps'").fetchone()[0])
        caps["wallet"]["fetched_at_ms"] -= 3_600_000
        conn.execute("UPDATE sync_state SET value = ? WHERE key = 'team_caps'", (json.dumps(caps),))
        conn.commit()
        conn.close()
        _insert(ledger_path, 0.5)
        w = json.loads(run_cli("status", "--json").stdout)["wallet"]
        assert w["stale"] is True and w["figure_age_s"] >= 3600
        assert abs(w["windows"][0]["spent_usd"] - 9.5) < 1e-6
        assert "last-known (no fresh figure for 60 min)" in w["note"]
        assert "last-known" in json.loads(run_cli("budget", "show", "--json").stdout)["wallet"]["note"]
    finally:
        collector.close()


def test_wallet_windows_never_count_this_device_twice():
    wallet = {
        "team": "t",
        "caps": {"daily_usd": 10.0},
        "member_caps": {"daily_usd": 4.0},
        "days": {"2026-12-04": [7.0, 700, 3.0, 300, 2.0, 200]},
    }
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    got = wallet_windows(wallet, now, UTC, lambda day: (2.5, 250) if day == "2026-12-04" else (0.0, 0), (0.1, 10))
    pooled, mine = got
    assert isinstance(pooled, WindowSpend) and pooled.name == "wallet day" and mine.name == "wallet member day"
    # others = team 7 − this device 2 = 5; plus this device live 2.5 and the reservation 0.1
    assert abs(pooled.spent_usd - 7.6) < 1e-9 and pooled.spent_tokens == 760
    # this member's other devices = 3 − 2 = 1; plus live 2.5 + 0.1
    assert abs(mine.spent_usd - 3.6) < 1e-9 and pooled.from_team and mine.from_team


def test_collector_budget_test_replays_the_team_through_the_wallet(tmp_path, collector_db):
    collector = Collector(collector_db).start()
    try:
        alice = Client(
            tmp_path / "alice", "alice@example.com", token=collector.token("alice@example.com", team="payments")
        )
        bob = Client(tmp_path / "bob", "bob@example.com", token=collector.token("bob@example.com", team="payments"))
        other = Client(
            tmp_path / "carol", "carol@example.com", token=collector.token("carol@example.com", team="search")
        )
        for day in range(5):
            alice.add_usage(10, day=day, cost=0.25)
            bob.add_usage(20, day=day, cost=0.25)
            other.add_usage(50, day=day, cost=0.25)  # another team: never in this wallet
        for c in (alice, bob, other):
            assert c.sync(collector.url)["ok"]
        db = str(collector.db)
        r = run_cli(
            "collector",
            "budget",
            "test",
            "--db",
            db,
            "--team",
            "payments",
            "--daily",
            "5",
            "--since",
            "2026-11-01",
            "--json",
        )
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["schema"] == "agentmeter.collector_budget_test/1"
        assert out["members"] == 2 and out["requests"] == 150 and abs(out["actual_usd"] - 37.5) < 1e-6
        # Each day: the two take turns until alice is done (20 requests, $5), then bob alone up to the refusal
        # line at 110 % of $5 ($5.50, two more), and his last eight are refused.
        assert out["refused"] == 40 and out["refused_members"] == {"bob@example.com": 40}
        assert abs(out["saved_usd"] - 10.0) < 1e-6 and out["worst"]["used_pct"] == 110.0
        first_day = out["first_day"]
        assert out["stages"]["wallet day"] == {"alert": first_day, "downgrade": first_day, "blocked": first_day}
        # The wallet stored on the collector is used when no cap is given; a member sub-cap splits it.
        assert (
            run_cli(
                "collector", "caps", "set", "--db", db, "--team", "payments", "--pooled", "--daily", "100"
            ).returncode
            == 0
        )
        assert (
            run_cli(
                "collector", "caps", "set", "--db", db, "--team", "payments", "--member", "*", "--daily", "2"
            ).returncode
            == 0
        )
        out = json.loads(
            run_cli(
                "collector", "budget", "test", "--db", db, "--team", "payments", "--since", "2026-11-01", "--json"
            ).stdout
        )
        assert out["caps"] == {"daily_usd": 100.0} and out["member_caps"] == {"daily_usd": 2.0}
        # each member stops at $2.25 a day (9 requests, the 10th would pass 110 % of $2): alice 1, bob 11 refused
        assert out["refused_members"] == {"alice@example.com": 5, "bob@example.com": 55}
        text = run_cli("collector", "budget", "test", "--db", db, "--team", "payments", "--since", "30d")
        assert text.returncode == 0 and "bob@example.com: 55 requests refused" in text.stdout
        bad = run_cli("collector", "budget", "test", "--db", db, "--team", "payments", "--since", "yesterday")
        assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--since" in bad.stderr
    finally:
        collector.close()
