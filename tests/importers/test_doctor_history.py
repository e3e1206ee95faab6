"""doctor warns before Claude Code's clean-up deletes transcripts that were never imported."""

from __future__ import annotations

import json
import os

from agentmeter.commands import doctor
from agentmeter.core.clock import SystemClock
from agentmeter.home.paths import get_paths
from agentmeter.importers import import_logs
from agentmeter.ledger import open_ledger

from .crafted import claude_line, write

DAY = 86_400


def _age(path, days: float) -> None:
    t = SystemClock().now_ms() / 1000 - days * DAY
    os.utime(path, (t, t))


def test_warns_three_days_before_cleanup_until_imported(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    assert doctor._claude_history().detail == "no Claude Code transcripts found"
    old = write(tmp_path / ".claude" / "projects" / "-w" / "old.jsonl", [claude_line("msg_1", "req_1")])
    new = write(tmp_path / ".claude" / "projects" / "-w" / "new.jsonl", [claude_line("msg_2", "req_2")])
    _age(old, 28)  # default 30 days: deleted within 3 days
    _age(new, 2)
    check = doctor._claude_history()
    assert check.status == "warn" and check.detail.startswith("1 Claude Code transcript")
    assert "cleanupPeriodDays = 30" in check.detail and check.fix == "agentmeter import claude"

    ledger = open_ledger(get_paths().ledger)
    import_logs("claude", ledger)
    ledger.close()
    assert doctor._claude_history().status == "ok"

    # a transcript that grew after its import is at risk again
    with old.open("a") as f:
        f.write(claude_line("msg_3", "req_3") + "\n")
    _age(old, 28)
    assert doctor._claude_history().status == "warn"


def test_reads_cleanup_period_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.json").write_text(json.dumps({"cleanupPeriodDays": 10}))
    f = write(tmp_path / ".claude" / "projects" / "-w" / "a.jsonl", [claude_line("msg_1", "req_1")])
    _age(f, 5)
    assert doctor._claude_history().status == "ok"
    _age(f, 8)
    check = doctor._claude_history()
    assert check.status == "warn" and "cleanupPeriodDays = 10" in check.detail
    assert any(c.name == "claude history" for c in doctor.run_checks())
