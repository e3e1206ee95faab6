"""The collector's audit trail (issue 20 item 6): a cap change made on the command line and one made through
the HTTP API both show in `collector audit`, with who (the OS user; the token id and its developer), when,
and the old and new value; token issues and revocations too; the export carries it."""

from __future__ import annotations

import csv
import getpass
import io
import json

from conftest import run_cli

from .helpers import Collector, request


def cli(*args: str) -> dict:
    r = run_cli(*args, "--json")
    assert r.returncode == 0, f"agentmeter {' '.join(args)}: {r.stderr}"
    return json.loads(r.stdout)


def test_cli_and_http_cap_changes_and_tokens_are_audited(tmp_path, collector_db):
    db = str(collector_db)
    lead = cli(
        "collector",
        "token",
        "add",
        "--db",
        db,
        "--developer",
        "lena@example.com",
        "--role",
        "lead",
        "--team",
        "payments",
    )
    cli("collector", "caps", "set", "--db", db, "--team", "payments", "--monthly", "500")
    dev = cli("collector", "token", "add", "--db", db, "--developer", "alice@example.com", "--team", "payments")

    c = Collector(collector_db).start()
    try:
        status, body, _ = request(
            f"{c.url}/v1/caps",
            method="PUT",
            token=lead["token"],
            body={"scope": "team", "name": "payments", "monthly_usd": 400, "daily_usd": 30},
        )
        assert status == 200, body
    finally:
        c.close()
    r = run_cli("collector", "token", "revoke", "--db", db, dev["id"])
    assert r.returncode == 0, r.stderr

    log = cli("collector", "audit", "--db", db)
    assert log["schema"] == "agentmeter.collector_audit/1"
    entries = log["entries"]
    assert [e["action"] for e in entries] == ["token.add", "caps.set", "token.add", "caps.set", "token.revoke"]
    me = f"os:{getpass.getuser()}"

    on_cli, on_http = entries[1], entries[3]
    assert on_cli["actor"] == me and on_cli["via"] == "cli" and on_cli["target"] == "team payments"
    assert on_cli["old"] is None and on_cli["new"]["monthly_usd"] == 500.0
    assert on_http["via"] == "http" and on_http["token_id"] == lead["id"]
    assert on_http["developer"] == "lena@example.com" and lead["id"] in on_http["actor"]
    assert on_http["old"]["monthly_usd"] == 500.0
    assert on_http["new"]["monthly_usd"] == 400.0 and on_http["new"]["daily_usd"] == 30.0
    assert entries[0]["new"] == {
        "developer": "lena@example.com",
        "team": "payments",
        "role": "lead",
        "cost_center": None,
    }
    assert entries[4]["target"] == dev["id"] and entries[4]["old"]["developer"] == "alice@example.com"
    assert all(e["at"].endswith("Z") for e in entries)
    assert all(lead["token"] not in json.dumps(e) and dev["token"] not in json.dumps(e) for e in entries)

    # filters
    assert [e["action"] for e in cli("collector", "audit", "--db", db, "--action", "caps")["entries"]] == [
        "caps.set",
        "caps.set",
    ]
    assert cli("collector", "audit", "--db", db, "--since", "2999-01-01")["entries"] == []
    assert len(cli("collector", "audit", "--db", db, "--since", "1h")["entries"]) == 5

    # the export carries it, as CSV and JSON
    r = run_cli("collector", "export", "--db", db, "--format", "audit")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["action"] for row in rows] == [e["action"] for e in entries]
    assert json.loads(rows[3]["new"])["monthly_usd"] == 400.0 and rows[3]["token_id"] == lead["id"]
    out = tmp_path / "audit.csv"
    r = run_cli("collector", "export", "--db", db, "--format", "audit", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert len(list(csv.DictReader(out.open()))) == 5


def test_audit_over_http_and_its_export(collector_db):
    c = Collector(collector_db).start()
    try:
        admin = c.token("root@example.com", role="admin")
        request(
            f"{c.url}/v1/caps", method="PUT", token=admin, body={"scope": "developer", "name": "bob", "daily_usd": 5}
        )
        status, body, _ = request(f"{c.url}/v1/audit?action=caps.set", token=admin)
        assert status == 200 and body["schema"] == "agentmeter.collector_audit/1"
        assert [(e["target"], e["new"]["daily_usd"]) for e in body["entries"]] == [("developer bob", 5.0)]
        status, text, hdrs = request(f"{c.url}/v1/export/audit", token=admin)
        assert status == 200 and hdrs["Content-Type"].startswith("text/csv") and "developer bob" in text
        assert request(f"{c.url}/v1/audit?since=yesterday", token=admin)[0] == 400
    finally:
        c.close()


def test_wallet_caps_and_alert_routes_are_audited(tmp_path, collector_db):
    """Team wallet caps (pooled and member sub-caps) and alert routes set through the real CLI are in the audit
    trail with who/when/old/new, next to the other cap changes: `collector audit`, GET /v1/audit (a lead sees
    its own team's), and the audit export. The webhook's secret path is never in any of them."""
    db = str(collector_db)
    secret = "https://hooks.example.com/services/T000/B000/sEcReTpAtH1234"
    cli("collector", "caps", "set", "--db", db, "--team", "payments", "--pooled", "--monthly", "2000")
    cli("collector", "caps", "set", "--db", db, "--team", "payments", "--pooled", "--monthly", "2500", "--daily", "150")
    cli("collector", "caps", "set", "--db", db, "--team", "payments", "--member", "*", "--daily", "40")
    cli("collector", "caps", "set", "--db", db, "--team", "search", "--pooled", "--weekly", "300")
    cli("collector", "alerts", "set", "--db", db, "--team", "payments", "--webhook", secret, "--digest-hour", "8")
    cli("collector", "alerts", "set", "--db", db, "--team", "payments", "--webhook", secret + "x", "--format", "slack")
    r = run_cli("collector", "alerts", "rm", "--db", db, "--team", "payments")
    assert r.returncode == 0, r.stderr

    entries = cli("collector", "audit", "--db", db)["entries"]
    me = f"os:{getpass.getuser()}"
    assert [(e["action"], e["team"], e["target"]) for e in entries] == [
        ("wallet.set", "payments", "wallet payments"),
        ("wallet.set", "payments", "wallet payments"),
        ("wallet.set", "payments", "wallet payments member *"),
        ("wallet.set", "search", "wallet search"),
        ("alerts.set", "payments", "alerts payments"),
        ("alerts.set", "payments", "alerts payments"),
        ("alerts.rm", "payments", "alerts payments"),
    ]
    assert all(e["actor"] == me and e["via"] == "cli" for e in entries)
    first, second, member = entries[0], entries[1], entries[2]
    assert first["old"] is None and first["new"] == {"monthly_usd": 2000.0, "allow_snooze": False}
    assert second["old"] == first["new"]
    assert second["new"] == {"monthly_usd": 2500.0, "daily_usd": 150.0, "allow_snooze": False}
    assert member["old"] is None and member["new"]["daily_usd"] == 40.0
    route_set, route_changed, route_rm = entries[4], entries[5], entries[6]
    assert route_set["old"] is None
    assert route_set["new"]["webhook"] == "https://hooks.example.com/…" and route_set["new"]["digest_hour"] == 8
    assert route_changed["old"] == route_set["new"]
    assert route_changed["new"]["format"] == "slack" and route_changed["new"]["digest_hour"] is None
    assert route_changed["new"]["webhook_sha256"] != route_set["new"]["webhook_sha256"]  # a new URL shows
    assert route_rm["old"] == route_changed["new"] and route_rm["new"] is None
    assert "sEcReTpAtH" not in json.dumps(entries)

    # setting the same caps again is not a change
    cli("collector", "caps", "set", "--db", db, "--team", "search", "--pooled", "--weekly", "300")
    assert len(cli("collector", "audit", "--db", db)["entries"]) == 7
    assert [e["action"] for e in cli("collector", "audit", "--db", db, "--action", "alerts")["entries"]] == [
        "alerts.set",
        "alerts.set",
        "alerts.rm",
    ]

    r = run_cli("collector", "export", "--db", db, "--format", "audit")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["action"] for row in rows] == [e["action"] for e in entries] and "sEcReTpAtH" not in r.stdout

    c = Collector(collector_db).start()
    try:
        lead = c.token("lena@example.com", "search", role="lead")
        status, body, _ = request(f"{c.url}/v1/audit?action=wallet", token=lead)
        assert status == 200, body
        assert [(e["target"], e["new"]) for e in body["entries"]] == [
            ("wallet search", {"weekly_usd": 300.0, "allow_snooze": False})
        ]
        status, text, _ = request(f"{c.url}/v1/export/audit", token=c.token("fin@example.com", role="finance"))
        assert status == 200 and text.count("wallet.set") == 4 and text.count("alerts.") == 3
        assert "sEcReTpAtH" not in text
    finally:
        c.close()
