"""Token roles on the real collector over HTTP (issue 20 item 6): developer (push only), lead (their team's
reports, caps, export and audit), finance (read-only, every team), admin (everything); every route checks the
role and answers 403 with a message that names the role it needs."""

from __future__ import annotations

import json

import pytest

from agentmeter.collector import roles
from agentmeter.collector.app import create_app
from conftest import run_cli

from .helpers import Client, Collector, request
from .test_dashboard import month_of_fixture


@pytest.fixture
def team(tmp_path, collector_db):
    """Two teams with usage, and one token of each role, on each engine."""
    c = Collector(collector_db).start()
    alice = Client(tmp_path / "a", "alice@example.com", "payments", c.token("alice@example.com", "payments"))
    bob = Client(tmp_path / "b", "bob@example.com", "search", c.token("bob@example.com", "search"))
    alice.add_usage(4, day=0, cost=1.5)
    bob.add_usage(3, day=1, cost=2.0)
    assert alice.sync(c.url)["ok"] and bob.sync(c.url)["ok"]
    c.tokens = {
        "developer": alice.token,
        "lead": c.token("lena@example.com", "payments", role="lead"),
        "finance": c.token("fin@example.com", role="finance"),
        "admin": c.token("root@example.com", role="admin"),
    }
    c.alice = alice
    yield c
    c.close()


def get(c, path, role):
    return request(f"{c.url}{path}", token=c.tokens[role])


def put_caps(c, role, body):
    return request(f"{c.url}/v1/caps", method="PUT", token=c.tokens[role], body=body)


def test_developer_pushes_and_reads_its_caps_only(team):
    assert team.alice.sync(team.url)["ok"]  # push and GET /v1/caps
    for path in ("/v1/report", "/v1/export/focus", "/v1/audit", "/v1/export/audit", "/dashboard"):
        status, body, _ = get(team, path, "developer")
        assert status == 403, (path, status, body)
        assert "a developer token may not" in body["message"] and "--role" in body["message"], body
    status, body, _ = put_caps(team, "developer", {"scope": "team", "name": "payments", "monthly_usd": 1})
    assert status == 403 and "change caps" in body["message"], body


def test_lead_sees_and_caps_their_own_team_only(team):
    status, body, _ = get(team, "/v1/report?by=developer", "lead")
    assert status == 200, body
    assert [r["key"] for r in body["rows"]] == ["alice@example.com"] and body["team"] == "payments"
    assert body["totals"]["requests"] == 4
    status, text, _ = get(team, "/v1/export/focus", "lead")
    assert status == 200 and "alice@example.com" in text and "bob@example.com" not in text
    status, page, _ = request(f"{team.url}/dashboard?token={team.tokens['lead']}&month={month_of_fixture()}")
    assert status == 200 and "alice@example.com" in page and "bob@example.com" not in page

    assert put_caps(team, "lead", {"scope": "team", "name": "payments", "monthly_usd": 300})[0] == 200
    assert put_caps(team, "lead", {"scope": "developer", "name": "alice@example.com", "daily_usd": 20})[0] == 200
    status, body, _ = put_caps(team, "lead", {"scope": "team", "name": "search", "monthly_usd": 1})
    assert status == 403 and "team payments" in body["message"], body
    status, body, _ = put_caps(team, "lead", {"scope": "developer", "name": "bob@example.com", "daily_usd": 1})
    assert status == 403, body

    status, body, _ = get(team, "/v1/audit", "lead")
    assert status == 200 and {e["target"] for e in body["entries"]} == {"team payments", "developer alice@example.com"}
    # a lead is a developer too: they read their own caps (and push)
    assert get(team, "/v1/caps", "lead")[0] == 200


def test_finance_reads_every_team_and_changes_nothing(team):
    status, body, _ = get(team, "/v1/report?by=team", "finance")
    assert status == 200 and {r["key"] for r in body["rows"]} == {"payments", "search"}
    status, text, _ = get(team, "/v1/export/focus", "finance")
    assert status == 200 and "alice@example.com" in text and "bob@example.com" in text
    assert get(team, "/v1/audit", "finance")[0] == 200
    status, body, _ = put_caps(team, "finance", {"scope": "team", "name": "payments", "monthly_usd": 1})
    assert status == 403 and "finance token may not change caps" in body["message"], body
    status, body, _ = request(
        f"{team.url}/v1/push",
        method="POST",
        token=team.tokens["finance"],
        body={"schema": "agentmeter.sync/1", "device_id": "d", "rollups": [], "sessions": []},
    )
    assert status == 403 and "push" in body["message"], body


def test_admin_does_everything(team):
    for path in ("/v1/report", "/v1/export/focus", "/v1/audit", "/v1/export/audit", "/dashboard", "/v1/caps"):
        assert get(team, path, "admin")[0] == 200, path
    assert put_caps(team, "admin", {"scope": "team", "name": "search", "monthly_usd": 50})[0] == 200


def test_a_lead_without_a_team_is_told_how_to_fix_it(team):
    lone = team.token("nobody@example.com", None, role="lead")
    status, body, _ = request(f"{team.url}/v1/report", token=lone)
    assert status == 403 and "--team" in body["message"], body


def test_every_route_has_a_role_rule(tmp_path):
    """A route added without a rule in roles.ROUTES is refused to everyone; this keeps the list complete."""
    app = create_app(tmp_path / "x.db")
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"}
    missing = served - set(roles.ROUTES)
    assert not missing, f"routes without a role rule in collector/roles.py ROUTES: {sorted(missing)}"


def test_token_add_role_and_admin_synonym_through_the_cli(collector_db):
    db = collector_db

    def add(*args):
        r = run_cli("collector", "token", "add", "--db", str(db), "--json", *args)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert add("--developer", "root@example.com", "--admin")["role"] == "admin"
    assert add("--developer", "lena@example.com", "--role", "lead", "--team", "payments")["role"] == "lead"
    fin = add("--developer", "fin@example.com", "--role", "finance")
    assert fin["role"] == "finance" and fin["admin"] is False
    r = run_cli("collector", "token", "add", "--db", str(db), "--developer", "x", "--role", "lead")
    assert r.returncode == 2 and "needs --team" in r.stderr
    r = run_cli("collector", "token", "list", "--db", str(db), "--json")
    assert {t["developer"]: t["role"] for t in json.loads(r.stdout)["tokens"]} == {
        "root@example.com": "admin",
        "lena@example.com": "lead",
        "fin@example.com": "finance",
    }
    c = Collector(db).start()
    try:
        assert request(f"{c.url}/v1/report", token=fin["token"])[0] == 200
    finally:
        c.close()
