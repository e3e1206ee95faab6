"""`agentmeter import` and `reconcile` as a user runs them: the real entry point in a subprocess."""

from __future__ import annotations

import json
import os

from agentmeter.home.paths import get_paths
from conftest import run_cli

from .crafted import claude_line, claude_user, write


def _transcripts(root):
    write(
        root / ".claude" / "projects" / "-w" / "s1.jsonl",
        [
            claude_user(),
            claude_line("msg_1", "req_1", out=3),
            claude_line("msg_1", "req_1", out=40),
            claude_line("msg_2", "req_2", ts="2026-01-01T00:01:00.000Z"),
        ],
    )
    bad = claude_line("msg_4", "req_4", ts="2026-01-01T00:03:00.000Z")
    write(
        root / ".claude" / "projects" / "-w" / "s2.jsonl",
        [claude_line("msg_3", "req_3", session="sess-2"), bad[:-40], claude_line("msg_5", "req_5", session="sess-2")],
    )
    # a transcript that cannot be read: a dangling link (permissions do not stop root, which CI may be)
    os.symlink(root / "gone.jsonl", root / ".claude" / "projects" / "-w" / "lost.jsonl")


def test_dry_run_json_then_import_then_again(tmp_path):
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": ""}
    _transcripts(tmp_path)

    dry = run_cli("import", "claude", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    payload = json.loads(dry.stdout)
    assert payload["schema"] == "agentmeter.import/1" and payload["dry_run"] is True
    assert (payload["added"], payload["sessions_created"], payload["files_read"]) == (4, 2, 2)
    assert payload["added_tokens"]["output_tokens"] == 40 + 10 + 10 + 10
    assert not get_paths().ledger.exists(), "a dry run must not create the ledger"
    lost = str(tmp_path / ".claude" / "projects" / "-w" / "lost.jsonl")
    assert f"agentmeter: could not read {lost}: No such file or directory" in dry.stderr.splitlines()
    s2 = str(tmp_path / ".claude" / "projects" / "-w" / "s2.jsonl")
    assert f"agentmeter: skipped 1 malformed line in {s2} (first at line 2)" in dry.stderr.splitlines()

    real = run_cli("import", "claude", env=env)
    assert real.returncode == 0, real.stderr
    assert "added 4" in real.stdout and "2 sessions created" in real.stdout
    assert real.stderr.count("could not read") == 1

    again = json.loads(run_cli("import", "claude", "--json", env=env).stdout)
    assert (again["added"], again["files_unchanged"], again["files_read"]) == (0, 2, 0)

    sessions = json.loads(run_cli("sessions", "--json", env=env).stdout)["sessions"]
    assert sorted(s["requests"] for s in sessions) == [2, 2]


def test_unreadable_path_fails_with_one_line(tmp_path):
    r = run_cli("import", "codex", str(tmp_path / "nope"), env={"HOME": str(tmp_path)})
    assert r.returncode == 1
    expected = f"agentmeter: could not read {tmp_path / 'nope'}: no such file or directory"
    assert r.stderr.strip().splitlines() == [expected]


def test_cursor_csv_with_the_wrong_columns_names_the_expected_ones(tmp_path):
    f = tmp_path / "usage.csv"
    f.write_text("Day,Thing\n2026-01-01,3\n")
    r = run_cli("import", "cursor", str(f), env={"HOME": str(tmp_path)})
    assert r.returncode == 1
    assert "not a Cursor usage export" in r.stderr and "Input (w/o Cache Write)" in r.stderr
    assert "Output Tokens" in r.stderr


def test_reconcile_json_envelope(tmp_path):
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": "", "CODEX_HOME": str(tmp_path / "no-codex")}
    write(
        tmp_path / ".claude" / "projects" / "-w" / "s1.jsonl",
        [claude_line("msg_1", "req_1", ts="2099-01-01T00:00:00.000Z")],
    )
    r = run_cli("reconcile", "--json", "--since", "1d", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["schema"] == "agentmeter.reconcile/1"
    [g] = out["groups"]
    assert (g["proxy"]["requests"], g["log"]["requests"], g["difference"]["input_tokens"]) == (0, 1, 100)
    assert g["causes"][0]["cause"] == "outside_agentmeter" and g["causes"][0]["not_imported"] == 1
