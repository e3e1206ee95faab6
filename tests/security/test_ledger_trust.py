"""Issue 14, items 6 and 10: a hostile upstream cannot poison the ledger or switch the brake off, and a
damaged ledger is noticed, refused closed and repaired row by row.

Real parts only: the fake provider and the daemon run as subprocesses, the ledger is a real SQLite file,
damage is real bytes overwritten in real pages.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agentmeter.core.bounds import MAX_TOKENS_PER_REQUEST
from agentmeter.core.clock import SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.ledger import open_ledger
from agentmeter.ledger.store import CRASH_REASON, local_day
from conftest import run_cli

MODEL = "claude-sonnet-4-5"


@pytest.fixture
def fake(tmp_path):
    port_file = tmp_path / "fake.port"
    proc = subprocess.Popen([sys.executable, "-m", "agentmeter.testing.fake_provider", "--port-file", str(port_file)])
    deadline = time.monotonic() + 15
    while not (port_file.exists() and port_file.read_text()):
        assert time.monotonic() < deadline, "fake provider did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port_file.read_text()}"
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def env(fake, home, monkeypatch):
    monkeypatch.setenv("AGENTMETER_UPSTREAM_ANTHROPIC", fake)
    monkeypatch.setenv("AGENTMETER_UPSTREAM_OPENAI", fake)
    monkeypatch.setenv("AGENTMETER_PORT", "0")
    yield fake
    run_cli("proxy", "stop")


def cli(*args) -> subprocess.CompletedProcess:
    return run_cli(*args)


def cli_json(*args) -> dict:
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


_turn = iter(range(10**9))


def call(base: str, *, usage: dict | None = None, api: str = "messages") -> tuple[int, dict | bytes]:
    n = next(_turn)
    if api == "messages":
        url, body = (
            base + "/v1/messages",
            {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": f"hi {n}"}]},
        )
        headers = {"x-api-key": "sk-ant-test-client"}
    else:
        url, body = base + "/responses", {"model": "gpt-5.1", "input": f"hi {n}"}
        headers = {"Authorization": "Bearer sk-test-client"}
    headers["Content-Type"] = "application/json"
    if usage is not None:
        headers["x-fake-usage"] = json.dumps(usage)
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def received(fake: str) -> int:
    with urllib.request.urlopen(fake + "/_fake/received", timeout=5) as r:
        return sum(1 for x in json.loads(r.read()) if x["path"].endswith(("/messages", "/responses")))


def rows(home: Path) -> list[dict]:
    lg = open_ledger(home / "ledger.db", readonly=True)
    try:
        return [dict(r) for r in lg.conn.execute("SELECT * FROM requests ORDER BY started_at, rowid")]
    finally:
        lg.close()


def health() -> dict:
    from agentmeter.proxy import daemon

    return daemon.health(daemon.status().port)


# -- item 6: hostile usage -------------------------------------------------------------------------------------


def test_absurd_usage_is_clamped_flagged_and_the_brake_survives_a_restart(env, home):
    fake = env
    assert cli("budget", "set", "--daily", "300").returncode == 0  # refused from $330 on
    cli_json("proxy", "start", "--json")
    base = cli_json("env", "--json")["env"]["ANTHROPIC_BASE_URL"]

    hostile = [
        {"output_tokens": 2**62},
        {"output_tokens": 2**63},
        {"input_tokens": -5, "output_tokens": 3},
        {"cache_read_tokens": "lots", "output_tokens": 7},
        {"output_tokens": 1.5e300},
    ]
    for usage in hostile:
        status, body = call(base, usage=usage)
        assert status == 200 and body["type"] == "message", body  # the agent gets its answer

    got = rows(home)
    assert len(got) == 5 and all(r["status"] == "ok" for r in got)
    assert all(r["reason"] != CRASH_REASON for r in got)
    big = [got[0], got[1], got[4]]
    for r in big:
        assert r["output_tokens"] == MAX_TOKENS_PER_REQUEST
        assert r["reason"].startswith("usage clamped: output_tokens") and "ceiling" in r["reason"]
        assert 0 < r["cost_usd"] < 1_000  # 10M output tokens at list price, not $69 trillion
    assert got[2]["input_tokens"] == 0 and got[2]["output_tokens"] == 3
    assert got[3]["cache_read_tokens"] == 0 and got[3]["output_tokens"] == 7

    # Every read command still adds the rows up.
    st = cli_json("status", "--json")
    day = next(w for w in st["windows"] if w["name"] == "day")
    assert day["spent_usd"] == pytest.approx(sum(r["cost_usd"] for r in got)) and day["stage"] == "blocked"
    assert cli("budget", "show", "--json").returncode == 0
    assert cli("sessions", "--json").returncode == 0
    assert cli("report", "--by", "day", "--format", "json").returncode == 0

    # The cap is blown: the next request is refused without reaching the provider, before and after a restart.
    before = received(fake)
    status, body = call(base)
    assert status == 429 and "daily budget" in body["error"]["message"]
    assert cli("proxy", "stop").returncode == 0
    cli_json("proxy", "start", "--json")
    base = cli_json("env", "--json")["env"]["ANTHROPIC_BASE_URL"]
    status, body = call(base)
    assert status == 429 and "daily budget" in body["error"]["message"]
    assert received(fake) == before
    assert not [r for r in rows(home) if r["reason"] == CRASH_REASON]  # no false "agentmeter stopped" rows


def _poisoned_old_ledger(path: Path) -> None:
    """A ledger as the old code left it: rows of 2**62 tokens in two models (each row fits in 64 bits, their
    sum does not), and the schema before migration m008."""
    lg = open_ledger(path)
    lg.create_session({"id": "s1", "token_hash": "h1", "agent": "claude", "started_at": 1})
    now_ms = SystemClock().now_ms()
    for i, model in enumerate(("claude-sonnet-4-5", "claude-opus-4-1")):
        row = {
            "request_id": f"r{i}",
            "session_id": "s1",
            "started_at": now_ms,
            "day": local_day(now_ms, None),
            "provider": "anthropic",
            "api": "messages",
            "method": "POST",
            "path": "/v1/messages",
            "model_used": model,
            "status": "ok",
            "output_tokens": 2**62,
            "cost_usd": 6.9e13,
            "agent": "claude",
            "repo": "",
        }
        cols = ", ".join(row)
        lg.conn.execute(f"INSERT INTO requests ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        lg.conn.execute(
            "INSERT INTO usage_daily (day, agent, provider, model, repo, subscription, requests, "
            "output_tokens, cost_usd) VALUES (?, 'claude', 'anthropic', ?, '', 0, 1, ?, 6.9e13)",
            (row["day"], model, 2**62),
        )
    lg.conn.execute("DELETE FROM _sqlite_migrations WHERE name LIKE 'm008%'")
    lg.conn.execute("PRAGMA user_version = 5")
    lg.close()


def test_a_ledger_poisoned_by_the_old_code_is_clamped_on_upgrade(home):
    home.mkdir(parents=True, exist_ok=True)
    _poisoned_old_ledger(home / "ledger.db")
    st = run_cli("status", "--json")
    assert st.returncode == 0, st.stderr  # was: internal error: OverflowError / integer overflow
    day = next(w for w in json.loads(st.stdout)["windows"] if w["name"] == "day")
    assert day["spent_usd"] <= 2 * 100_000
    assert run_cli("budget", "show", "--json").returncode == 0
    got = rows(home)
    assert all(r["output_tokens"] == MAX_TOKENS_PER_REQUEST and r["reason"].startswith("usage clamped") for r in got)


# -- items 6 and 10: a damaged ledger ---------------------------------------------------------------------------


def _page_of(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    finally:
        conn.close()


def _smash(path: Path, pages: list[int], fill: bytes | None = None) -> None:
    size = 4096
    data = bytearray(path.read_bytes())
    for p in pages:
        data[(p - 1) * size : p * size] = fill * size if fill is not None else os.urandom(size)
    path.write_bytes(bytes(data))


def test_a_failing_budget_check_refuses_priced_traffic_after_a_restart(env, home):
    fake = env
    assert cli("budget", "set", "--daily", "100").returncode == 0
    cli_json("proxy", "start", "--json")
    base = cli_json("env", "--json")["env"]["ANTHROPIC_BASE_URL"]
    assert call(base)[0] == 200
    assert cli("proxy", "stop").returncode == 0

    path = home / "ledger.db"
    _smash(path, [_page_of(path, "usage_daily")], fill=b"\x00")  # the rollup the budget check reads
    cli_json("proxy", "start", "--json")
    env_ = cli_json("env", "--json")["env"]
    before = received(fake)
    status, body = call(env_["ANTHROPIC_BASE_URL"])
    # Closed, in Claude Code's own refusal shape: 429, rate_limit_error, a message saying what to run.
    assert status == 429 and body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    msg = body["error"]["message"]
    assert msg.startswith("agentmeter: the budget check failed") and "agentmeter doctor --repair" in msg
    status, body = call(env_["OPENAI_BASE_URL"], api="responses")
    assert status == 429 and body["error"]["code"] == "agentmeter_budget_exceeded"
    assert received(fake) == before  # nothing went upstream unchecked

    h = health()
    assert h["ledger"] == "damaged" and "doctor --repair" in h["fix"]
    st = run_cli("status")
    assert st.returncode == 1 and "Traceback" not in st.stderr and "internal error" not in st.stderr
    assert "agentmeter doctor --repair" in st.stderr and st.stderr.startswith("agentmeter: the ledger file is damaged")


def _build(path: Path, n: int) -> dict[str, tuple]:
    lg = open_ledger(path)
    lg.create_session({"id": "s1", "token_hash": "h1", "agent": "claude", "started_at": 1})
    want = {}
    for i in range(n):
        rec = RequestRecord(
            request_id=f"r{i:05d}",
            session_id="s1",
            started_at_ms=1_760_000_000_000 + i * 1000,
            provider="anthropic",
            api="messages",
            method="POST",
            path="/v1/messages",
            model_requested=MODEL,
            model_used=MODEL,
            stream=True,
            status="ok",
            http_status=200,
            usage=Usage(input_tokens=100 + i, output_tokens=10 + i % 7),
            cost_usd=0.01 + i / 1e5,
        )
        lg.insert_request(rec)
        want[rec.request_id] = (rec.started_at_ms, rec.usage.input_tokens, rec.usage.output_tokens)
    lg.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    lg.close()
    return want


@pytest.mark.parametrize("damage", ["root-and-leaves", "scattered-random", "last-page"])
def test_repair_keeps_every_readable_row_and_counts_honestly(home, damage):
    home.mkdir(parents=True, exist_ok=True)
    path = home / "ledger.db"
    want = _build(path, 1500)
    pages = path.stat().st_size // 4096
    if damage == "root-and-leaves":  # the requests table's root page, which hid every row from SQL, and leaves
        _smash(path, [_page_of(path, "requests")], fill=b"\x00")
        _smash(path, [pages // 4, pages // 2], fill=b"\x00")
        _smash(path, [3 * pages // 4])
    elif damage == "scattered-random":
        _smash(path, [pages // 5, 2 * pages // 5, 3 * pages // 5, 4 * pages // 5])
    else:
        _smash(path, [pages], fill=b"\x00")

    r = run_cli("doctor", "--json", "--repair")
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    rep = checks["ledger repair"]
    detail = rep["detail"]
    kept = int(detail.split("; ")[1].split(" requests")[0])
    lost = int(detail.split("lost: ")[1].split(" requests")[0]) if "lost: " in detail else 0
    assert kept + lost == 1500, detail  # every row that existed is either recovered or counted lost
    assert kept >= 1500 - 4 * 40, detail  # at most the rows of the damaged pages are lost
    assert checks["ledger"]["status"] == "ok"

    lg = open_ledger(path, readonly=True)
    got = {
        r["request_id"]: (r["started_at"], r["input_tokens"], r["output_tokens"])
        for r in lg.conn.execute("SELECT * FROM requests")
    }
    rollup = sum(r["requests"] for r in lg.rollup())
    lg.close()
    assert len(got) == kept and rollup == kept
    assert all(want[k] == v for k, v in got.items())  # what came back is what was written


def test_an_agent_log_with_absurd_usage_is_clamped_on_import(tmp_path):
    """The importers go through the same bounds: a transcript is as much outside input as a response."""
    from agentmeter.importers import import_logs
    from importers.crafted import claude_line, claude_user, write

    f = write(
        tmp_path / "p" / "s.jsonl",
        [claude_user(), claude_line("msg_1", "req_1", out=2**62, inp=-7), claude_line("msg_2", "req_2", out=20)],
    )
    lg = open_ledger(tmp_path / "ledger.db")
    try:
        import_logs("claude", lg, [f.parent])
        got = {r["import_key"]: dict(r) for r in lg.conn.execute("SELECT * FROM requests")}
        totals = lg.window_spend("2025-12-31", "2026-01-02")
    finally:
        lg.close()
    bad, good = got["claude:msg_1:req_1"], got["claude:msg_2:req_2"]
    assert bad["output_tokens"] == MAX_TOKENS_PER_REQUEST and bad["reason"].startswith("usage clamped")
    assert bad["cost_usd"] < 1_000 and good["output_tokens"] == 20 and good["reason"] is None
    assert totals[1] < 2 * MAX_TOKENS_PER_REQUEST
