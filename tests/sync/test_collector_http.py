"""The collector's front door: tokens (wrong, revoked, non-admin), size limits, schema validation with the
field named, per-token rate limiting. Every refusal is a clean JSON 4xx and the collector keeps serving."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from pg_cluster import stored_bytes

from .helpers import Client, Collector, request


@pytest.fixture
def collector(collector_db):
    c = Collector(collector_db).start()
    yield c
    c.close()


def push_body(**over) -> dict:
    item = {
        "key": "a" * 64,
        "day": "2026-11-18",
        "agent": "claude",
        "provider": "anthropic",
        "model": "m",
        "repo": "github.com/acme/app",
        "subscription": False,
        "requests": 1,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.5,
    }
    item.update(over)
    return {"schema": "agentmeter.push/1", "device_id": "device-0001", "rollups": [item]}


def test_wrong_and_revoked_tokens_are_refused(tmp_path, collector):
    good = collector.token("alice@example.com")
    c = Client(tmp_path / "a", "alice@example.com", token=good)
    c.add_usage(2)
    wrong = c.sync(collector.url, token="amc_not-a-real-token")
    assert not wrong["ok"] and wrong["error"]["kind"] == "token" and "401" in wrong["error"]["message"]
    status, body, hdrs = request(f"{collector.url}/v1/push", method="POST", body=push_body())
    assert status == 401 and body["error"] == "unauthorized" and hdrs.get("WWW-Authenticate") == "Bearer"
    assert collector.totals()["requests"] == 0

    assert c.sync(collector.url)["ok"]
    listed = run_cli("collector", "token", "list", "--db", str(collector.db), "--json")
    token_id = json.loads(listed.stdout)["tokens"][0]["id"]
    assert good not in listed.stdout  # only ids, never the token or its hash
    rm = run_cli("collector", "token", "rm", token_id, "--db", str(collector.db))
    assert rm.returncode == 0, rm.stderr
    c.add_usage(1)
    revoked = c.sync(collector.url)
    assert not revoked["ok"] and revoked["error"]["kind"] == "token"
    status, body, _ = request(f"{collector.url}/v1/caps", token=good)
    assert status == 401 and "revoked" in body["message"]
    assert collector.totals()["requests"] == 2  # what was pushed before revocation stays; nothing after

    again = run_cli("collector", "token", "rm", token_id, "--db", str(collector.db))
    assert again.returncode == 4 and "no active token" in again.stderr


def test_tokens_are_stored_hashed(tmp_path, collector):
    token = collector.token("alice@example.com")
    raw = stored_bytes(collector.db)
    assert token.encode() not in raw


def test_reports_need_an_admin_token(collector):
    dev = collector.token("alice@example.com")
    admin = collector.token("lead@example.com", admin=True)
    status, body, _ = request(f"{collector.url}/v1/report?by=team", token=dev)
    assert status == 403 and "admin" in body["message"]
    status, body, _ = request(f"{collector.url}/v1/report?by=team", token=admin)
    assert status == 200 and body["schema"] == "agentmeter.collector_report/1"
    status, body, _ = request(f"{collector.url}/v1/report?by=colour", token=admin)
    assert status == 400 and body["field"] == "by"
    status, _, _ = request(f"{collector.url}/dashboard", token=dev)
    assert status == 403


def test_oversized_and_malformed_payloads(collector):
    token = collector.token("alice@example.com")
    url = f"{collector.url}/v1/push"
    status, body, _ = request(url, method="POST", token=token, body=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert status == 413 and body["error"] == "too_large"
    status, body, _ = request(url, method="POST", token=token, body=b'{"schema": "agentmeter.push/1", ')
    assert status == 400 and body["error"] == "bad_json"
    status, body, _ = request(url, method="POST", token=token, body=b"\xff\xfe not utf-8")
    assert status == 400
    cases = [  # the envelope is wrong: the push is refused whole
        ({**push_body(), "schema": "other/9"}, "schema"),
        ({**push_body(), "device_id": "x"}, "device_id"),
        ({**push_body(), "rollups": {"not": "a list"}}, "rollups"),
        ({**push_body(), "deleted": ["b" * 64] * 5000}, "items"),
        ([1, 2, 3], "body"),
    ]
    for payload, field in cases:
        status, body, _ = request(url, method="POST", token=token, body=payload)
        assert status == 422, (field, status, body)
        assert body["error"] == "invalid" and body["field"] == field, body
    items = [  # one item is wrong: it is skipped and named, the push is answered (issue 14 item 11)
        (push_body(cost_usd=-1), "rollups[0].cost_usd"),
        (push_body(cost_usd="12"), "rollups[0].cost_usd"),
        (push_body(requests=1.5), "rollups[0].requests"),
        (push_body(day="18/11/2026"), "rollups[0].day"),
        (push_body(key="not-a-sha"), "rollups[0].key"),
        (push_body(subscription="no"), "rollups[0].subscription"),
        ({**push_body(), "rollups": ["text"]}, "rollups[0]"),
    ]
    for payload, field in items:
        status, body, _ = request(url, method="POST", token=token, body=payload)
        assert status == 200 and body["accepted"]["rollups"] == 0, (field, status, body)
        assert [r["field"] for r in body["rejected"]] == [field], body
    assert collector.totals()["requests"] == 0
    status, body, _ = request(url, method="POST", token=token, body=push_body())
    assert status == 200 and body["accepted"]["rollups"] == 1  # still serving, and a good push still works


def test_unknown_fields_never_reach_the_disk(collector):
    token = collector.token("alice@example.com")
    body = push_body(prompt="SECRET-FIELD-VALUE")
    body["extra"] = "SECRET-FIELD-VALUE"
    status, _, _ = request(f"{collector.url}/v1/push", method="POST", token=token, body=body)
    assert status == 200
    raw = stored_bytes(collector.db)
    assert b"SECRET-FIELD-VALUE" not in raw


def test_rate_limit_per_token(tmp_path, make_collector_db):
    c = Collector(make_collector_db("rl"), rate_per_minute=3).start()
    try:
        a, b = c.token("a@example.com"), c.token("b@example.com")
        got = [request(f"{c.url}/v1/caps", token=a)[0] for _ in range(4)]
        assert got == [200, 200, 200, 429]
        status, body, hdrs = request(f"{c.url}/v1/caps", token=a)
        assert status == 429 and body["error"] == "rate_limited" and int(hdrs["Retry-After"]) >= 1
        assert request(f"{c.url}/v1/caps", token=b)[0] == 200  # another developer is not affected
        client = Client(tmp_path / "a", "a@example.com", token=a)
        r = client.sync(c.url)
        assert not r["ok"] and r["error"]["kind"] == "rate_limited"
        assert r["next_attempt_at"]
    finally:
        c.close()


def test_caps_put_validates(collector):
    admin = collector.token("lead@example.com", admin=True)
    dev = collector.token("alice@example.com", team="payments")
    url = f"{collector.url}/v1/caps"
    assert request(url, method="PUT", token=dev, body={"scope": "team", "name": "payments"})[0] == 403
    status, body, _ = request(url, method="PUT", token=admin, body={"scope": "galaxy", "name": "x"})
    assert status == 422 and body["field"] == "scope"
    status, body, _ = request(
        url, method="PUT", token=admin, body={"scope": "team", "name": "payments", "daily_usd": -3}
    )
    assert status == 422 and body["field"] == "daily_usd"
    status, body, _ = request(
        url,
        method="PUT",
        token=admin,
        body={"scope": "team", "name": "payments", "daily_usd": 3, "monthly_tokens": 1000},
    )
    assert status == 200 and body["caps"]["daily_usd"] == 3
    status, body, _ = request(url, token=dev)
    assert status == 200 and body["team"] == "payments"
    assert body["caps"]["team"] == {"daily_usd": 3.0, "monthly_tokens": 1000, "name": "payments", "allow_snooze": False}
    assert body["caps"]["developer"] is None
