"""Issue 15: `import claude|codex` of fast-mode / priority sessions and dated history gives the billed
amounts (vendor list prices, see tests/test_pricing_list.py for the sources); re-import and reprice change
nothing."""

from __future__ import annotations

import json

import pytest

from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from conftest import run_cli

from .crafted import claude_line, claude_user, codex_meta, codex_record, counts, write

M = 1_000_000


def _fast(line: str) -> str:
    d = json.loads(line)
    d["message"]["usage"]["speed"] = "fast"
    return json.dumps(d)


def _codex_turn(model: str, tier: str | None, ts: str) -> str:
    payload = {"model": model, "cwd": "/nowhere/proj"}
    if tier:
        payload["service_tier"] = tier
    return json.dumps({"timestamp": ts, "type": "turn_context", "payload": payload})


def _rows():
    lg = open_ledger(get_paths().ledger, readonly=True)
    try:
        return {r["import_key"]: dict(r) for r in lg.conn.execute("SELECT * FROM requests")}
    finally:
        lg.close()


def test_import_bills_fast_mode_priority_and_dated_history(tmp_path, monkeypatch):
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": ""}
    write(
        tmp_path / ".claude" / "projects" / "-w" / "s1.jsonl",
        [
            claude_user(),
            # Opus 4.6 fast mode: $30 in / $150 out.
            _fast(
                claude_line(
                    "msg_f", "req_f", inp=10_000, out=2000, model="claude-opus-4-6", ts="2026-04-01T10:00:00.000Z"
                )
            ),
            # The same model at standard speed: $5 / $25.
            claude_line("msg_s", "req_s", inp=10_000, out=2000, model="claude-opus-4-6", ts="2026-04-01T10:01:00.000Z"),
        ],
    )
    codex_home = tmp_path / "codex"
    env["CODEX_HOME"] = str(codex_home)
    write(
        codex_home / "sessions" / "2025" / "05" / "15" / "rollout-old.jsonl",
        [
            codex_meta("old", ts="2025-05-15T09:00:00.000Z"),
            _codex_turn("o3", None, "2025-05-15T09:00:01.000Z"),
            # o3 in May 2025: $10 in / $40 out (before the 2025-06-10 cut to $2 / $8).
            codex_record("old", "resp_old", counts(10_000, out=1000), ts="2025-05-15T09:00:02.000Z"),
        ],
    )
    write(
        codex_home / "sessions" / "2026" / "04" / "01" / "rollout-fast.jsonl",
        [
            codex_meta("fast", ts="2026-04-01T09:00:00.000Z"),
            # Codex's "fast" setting is priority processing: gpt-5 at $2.50 in / $0.25 cached / $20 out.
            _codex_turn("gpt-5", "fast", "2026-04-01T09:00:01.000Z"),
            codex_record("fast", "resp_fast", counts(100_000, cached=90_000, out=5000), ts="2026-04-01T09:00:02.000Z"),
        ],
    )
    for agent in ("claude", "codex"):
        r = run_cli("import", agent, "--json", env=env)
        assert r.returncode == 0, r.stderr
    rows = _rows()
    fast, std = rows["claude:msg_f:req_f"], rows["claude:msg_s:req_s"]
    assert fast["tier"] == "fast" and std["tier"] is None
    assert fast["cost_usd"] == pytest.approx(10_000 * 30 / M + 2000 * 150 / M, abs=1e-9)
    assert std["cost_usd"] == pytest.approx(10_000 * 5 / M + 2000 * 25 / M, abs=1e-9)
    old, pri = rows["codex:resp_old"], rows["codex:resp_fast"]
    assert old["cost_usd"] == pytest.approx(10_000 * 10 / M + 1000 * 40 / M, abs=1e-9)
    assert pri["tier"] == "priority"
    assert pri["cost_usd"] == pytest.approx(10_000 * 2.5 / M + 90_000 * 0.25 / M + 5000 * 20 / M, abs=1e-9)

    # A re-import adds nothing and a reprice changes nothing: both price at the row's own date and tier.
    for agent in ("claude", "codex"):
        again = json.loads(run_cli("import", agent, "--json", env=env).stdout)
        assert again["added"] == 0
    rep = run_cli("reprice", "--json", env=env)
    assert rep.returncode == 0, rep.stderr
    payload = json.loads(rep.stdout)
    assert payload["schema"] == "agentmeter.reprice/1" and payload["changed"] == 0 and payload["rows"] == 4
    assert _rows() == rows
