"""Cursor's usage export and Admin API: column layouts, attribution to `run cursor` sessions, never twice."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentmeter.core.errors import AgentmeterError
from agentmeter.importers import cursor, import_cursor
from agentmeter.importers.base import parse_ts
from agentmeter.ledger import open_ledger

V3 = (
    "Date,Cloud Agent ID,Automation ID,Kind,Model,Max Mode,Input (w/ Cache Write),Input (w/o Cache Write),"
    "Cache Read,Output Tokens,Total Tokens,Cost\n"
)
TEAM = (
    "Date,User,Kind,Model,Max Mode,Input (w/ Cache Write),Input (w/o Cache Write),Cache Read,Output Tokens,"
    "Total Tokens,Cost\n"
)


@pytest.fixture
def ledger(tmp_path):
    lg = open_ledger(tmp_path / "ledger.db")
    yield lg
    lg.close()


def rows(ledger) -> list[dict]:
    return [dict(r) for r in ledger.conn.execute("SELECT * FROM requests ORDER BY started_at")]


def test_v3_export_buckets_cost_and_reimport(ledger, tmp_path):
    f = tmp_path / "usage-events.csv"
    f.write_text(
        V3 +
        # w/ = the cache write alone: 1,000 + 200 + 5000 + 300 = 6500
        '2026-08-20T10:00:00.000Z,,,"Included",claude-4-sonnet,No,"1,000",200,5000,300,6500,Included\n'
        '2026-08-20T11:00:00.000Z,,,"Usage-based",gpt-5,No,0,100,0,50,150,$0.01\n'
        '2026-08-19T09:00:00.000Z,,,"Errored, Not Charged",claude-4-sonnet,No,0,0,0,0,0,$0.00\n'
    )
    s = import_cursor(ledger, [f])
    assert (s.added, s.files_read, s.sessions_created) == (2, 1, 1)
    a, b = rows(ledger)
    assert (a["input_tokens"], a["cache_write_tokens"], a["cache_read_tokens"], a["output_tokens"]) == (
        200,
        1000,
        5000,
        300,
    )
    assert a["subscription"] == 1 and a["cost_usd"] > 0 and a["provider"] == "anthropic"  # API-equivalent
    assert (b["cost_usd"], b["price_source"], b["subscription"], b["provider"]) == (0.01, "cursor-export", 0, "openai")
    assert {r["agent"] for r in rows(ledger)} == {"cursor"} and {r["source"] for r in rows(ledger)} == {"cursor-export"}
    again = import_cursor(ledger, [f])
    assert (again.added, again.already_imported) == (0, 2)


def test_input_with_cache_write_meaning_input_plus_write(ledger, tmp_path):
    f = tmp_path / "old.csv"
    # an older layout, where "w/ cache write" is input plus the write: 1200 + 5000 + 300 = 6500
    f.write_text(
        "Date,Kind,Model,Max Mode,Input (w/ Cache Write),Input (w/o Cache Write),Cache Read,Output Tokens,"
        "Total Tokens,Cost\n"
        '"2026-10-01T10:00:00.000Z","Included","claude-4-sonnet","No","1200","1000","5000","300","6500",'
        '"0.12"\n'
    )
    import_cursor(ledger, [f])
    [r] = rows(ledger)
    assert (r["input_tokens"], r["cache_write_tokens"], r["cache_read_tokens"], r["output_tokens"]) == (
        1000,
        200,
        5000,
        300,
    )


def test_attributed_to_the_run_cursor_session_by_time_and_developer(ledger, tmp_path):
    start, end = parse_ts("2026-08-20T09:00:00Z"), parse_ts("2026-08-20T12:00:00Z")
    ledger.create_session(
        {
            "id": "cur1",
            "token_hash": "h",
            "agent": "cursor",
            "developer": "ana@acme.test",
            "repo": "github.com/acme/app",
            "started_at": start,
            "ended_at": end,
        }
    )
    f = tmp_path / "team.csv"
    f.write_text(
        TEAM + "2026-08-20T10:00:00.000Z,ana@acme.test,Included,gpt-5,No,0,100,0,50,150,$0.01\n"
        "2026-08-20T10:05:00.000Z,bob@acme.test,Included,gpt-5,No,0,100,0,50,150,$0.01\n"
        "2026-08-20T15:00:00.000Z,ana@acme.test,Included,gpt-5,No,0,100,0,50,150,$0.01\n"
    )
    s = import_cursor(ledger, [f])
    got = [(r["session_id"], r["repo"]) for r in rows(ledger)]
    assert got[0] == ("cur1", "github.com/acme/app")
    assert got[1][0] != "cur1" and got[2][0] not in ("cur1", got[1][0])  # bob's day, ana's later that day
    assert s.sessions_created == 2
    devs = dict(ledger.conn.execute("SELECT id, developer FROM sessions").fetchall())
    assert devs[got[1][0]] == "bob@acme.test" and devs[got[2][0]] == "ana@acme.test"


def test_identical_rows_are_both_counted_once_each(ledger, tmp_path):
    f = tmp_path / "dup.csv"
    line = "2026-08-20T10:00:00.000Z,,,Included,gpt-5,No,0,100,0,50,150,$0.01\n"
    f.write_text(V3 + line + line)
    assert import_cursor(ledger, [f]).added == 2
    assert import_cursor(ledger, [f]).added == 0


def test_header_without_the_columns_is_reported(ledger, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("When,What\n1,2\n")
    s = import_cursor(ledger, [f])
    [(path, why)] = s.unreadable
    assert path == str(f) and "Date, Model" in why and "Output Tokens" in why and s.added == 0


class _FakeAdmin(BaseHTTPRequestHandler):
    pages: dict = {}
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"key_admin:").decode():
            self.send_response(401)
            self.end_headers()
            return
        page = self.pages.get(body["page"], {"usageEvents": [], "pagination": {"hasNextPage": False}})
        data = json.dumps(page).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def admin_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeAdmin)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    _FakeAdmin.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _event(ts: str, inp: int, cents: float | None = 1.5):
    tu = {"inputTokens": inp, "outputTokens": 20, "cacheWriteTokens": 5, "cacheReadTokens": 300}
    if cents is not None:
        tu["totalCents"] = cents
    return {
        "timestamp": str(parse_ts(ts)),
        "model": "claude-4-sonnet",
        "kindLabel": "Usage-based",
        "userEmail": "ana@acme.test",
        "isTokenBasedCall": True,
        "tokenUsage": tu,
    }


def test_admin_api_pages_into_rows(ledger, admin_api, monkeypatch):
    _FakeAdmin.pages = {
        1: {
            "usageEvents": [_event("2026-08-20T10:00:00Z", 100), {"timestamp": "1", "model": "x"}],
            "pagination": {"hasNextPage": True},
        },
        2: {"usageEvents": [_event("2026-08-20T10:01:00Z", 200, None)], "pagination": {"hasNextPage": False}},
    }
    monkeypatch.setenv("AGENTMETER_CURSOR_API_URL", admin_api)
    s = import_cursor(ledger, [], api_key="key_admin", api_since_ms=0, now_ms=parse_ts("2026-09-01T00:00:00Z"))
    assert s.added == 2
    a, b = rows(ledger)
    assert (a["input_tokens"], a["cache_read_tokens"], a["cache_write_tokens"], a["cost_usd"]) == (100, 300, 5, 0.015)
    assert b["price_source"] != "cursor-export"  # no cents: priced from the tokens
    assert [p for p, _, _ in _FakeAdmin.seen] == ["/teams/filtered-usage-events"] * 2
    assert _FakeAdmin.seen[0][2]["startDate"] == 0 and _FakeAdmin.seen[1][2]["page"] == 2
    again = import_cursor(ledger, [], api_key="key_admin", api_since_ms=0, now_ms=parse_ts("2026-09-01T00:00:00Z"))
    assert again.added == 0


def test_admin_api_bad_key(admin_api):
    with pytest.raises(AgentmeterError, match="refused the key"):
        list(cursor.fetch_events("wrong", 0, 1, base_url=admin_api))
