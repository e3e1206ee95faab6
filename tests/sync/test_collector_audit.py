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
