"""`agentmeter audit` (issue 20 item 6): cap changes, snoozes and key changes made on this machine, and the
team caps the collector hands out whenever they change, with who, when, old and new value."""

from __future__ import annotations

import getpass
import json

from agentmeter.home.paths import get_paths
from conftest import run_cli
from sync.helpers import Client, Collector, request


def cli_json(*args: str, **kw) -> dict:
    r = run_cli(*args, "--json", **kw)
    assert r.returncode == 0, f"agentmeter {' '.join(args)}: {r.stderr}"
    return json.loads(r.stdout)


def test_budget_set_snooze_and_keys_are_audited():
    me = f"os:{getpass.getuser()}"
    assert run_cli("budget", "set", "--daily", "20").returncode == 0
    assert run_cli("budget", "set", "--daily", "25", "--monthly", "300").returncode == 0
    assert run_cli("budget", "set", "--agent", "codex", "--daily", "5").returncode == 0
    assert run_cli("budget", "snooze", "1h").returncode == 0
    key = "sk-ant-test-audit-0123456789abcdef"
    assert run_cli("keys", "set", "anthropic", input=key + "\n").returncode == 0
    assert run_cli("keys", "rm", "anthropic").returncode == 0

    log = cli_json("audit")
    assert log["schema"] == "agentmeter.audit/1"
    got = [(e["action"], e["target"], e["old"], e["new"]) for e in log["entries"]]
    assert got[:3] == [
        ("budget.set", "budget", {"daily_usd": None}, {"daily_usd": 20.0}),
        ("budget.set", "budget", {"daily_usd": 20.0, "monthly_usd": None}, {"daily_usd": 25.0, "monthly_usd": 300.0}),
        ("budget.set", "budget.agents.codex", {"daily_usd": None}, {"daily_usd": 5.0}),
    ]
    snooze = log["entries"][3]
    assert snooze["action"] == "budget.snooze" and snooze["old"] == {"snoozed_until": None}
    assert snooze["new"]["snoozed_until"].endswith("Z") and snooze["detail"] == "1h"
    assert got[4:] == [
        ("key.set", "anthropic", {"set": False}, {"set": True, "where": "file"}),
        ("key.rm", "anthropic", {"set": True, "where": "file"}, {"set": False}),
    ]
    assert {e["actor"] for e in log["entries"]} == {me}
    # the key itself is nowhere in the ledger, not even masked
    raw = b"".join(p.read_bytes() for p in get_paths().ledger.parent.glob(get_paths().ledger.name + "*"))
    assert key.encode() not in raw and key[-4:].encode() not in raw

    assert [e["action"] for e in cli_json("audit", "--action", "key")["entries"]] == ["key.set", "key.rm"]
    assert cli_json("audit", "--since", "2999-01-01")["entries"] == []
    assert len(cli_json("audit", "--since", "1h")["entries"]) == 6
    r = run_cli("audit")
    assert r.returncode == 0 and "budget.set" in r.stdout and "daily_usd=25.0" in r.stdout
    r = run_cli("audit", "--action", "nope")
    assert r.returncode == 2 and "budget.set" in r.stderr


def test_a_cap_made_on_the_collector_shows_in_the_local_audit(collector_db):
    """The done-means line: the log shows a cap change made through the CLI and one made on the collector."""
    c = Collector(collector_db).start()
    try:
        client = Client(
            get_paths().ledger.parent, "alice@example.com", "payments", c.token("alice@example.com", "payments")
        )
        assert client.path == get_paths().ledger
        admin = c.token("root@example.com", role="admin")
        assert run_cli("budget", "set", "--monthly", "300").returncode == 0
        assert client.sync(c.url)["ok"]  # no team caps yet: nothing to record
        status, _body, _ = request(
            f"{c.url}/v1/caps",
            method="PUT",
            token=admin,
            body={"scope": "team", "name": "payments", "monthly_usd": 200},
        )
        assert status == 200
        assert client.sync(c.url)["ok"]
        assert client.sync(c.url)["ok"]  # unchanged: recorded once
    finally:
        c.close()
    entries = cli_json("audit")["entries"]
    assert [e["action"] for e in entries] == ["budget.set", "team_caps.changed"]
    assert entries[0]["new"] == {"monthly_usd": 300.0}
    team = entries[1]
    assert team["actor"] == f"collector {c.url}" and team["old"] == {"developer": None, "team": None}
    assert team["new"]["team"]["monthly_usd"] == 200.0 and team["new"]["team"]["name"] == "payments"


def test_audit_table_keeps_who_and_what_at_60_and_80_columns():
    """The essential columns (when, who, what) are never cut; free text gives way first (found: at 80 columns
    `what` printed as `budget.s` and `who` as one letter)."""
    assert run_cli("budget", "set", "--daily", "25", "--monthly", "300").returncode == 0
    assert run_cli("budget", "snooze", "1h").returncode == 0
    who = f"os:{getpass.getuser()}"
    for width in (60, 80, 100):
        r = run_cli("audit", env={"COLUMNS": str(width)})
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert all(len(line) <= width for line in lines), (width, r.stdout)
        assert any("budget.snooze" in line and who in line for line in lines), (width, r.stdout)
        assert any("budget.set" in line and who in line for line in lines), (width, r.stdout)
