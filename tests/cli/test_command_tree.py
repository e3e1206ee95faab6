"""The README's promise, "--dry-run and --json work everywhere", checked against the live command tree: every
command that prints data has --json, every command that writes has --dry-run, unless listed below with the
reason. The walk covers commands added later: a new command must pass it or say here why not."""

from __future__ import annotations

import json
import sqlite3

import pytest
import typer.main

from agentmeter.cli import app
from conftest import run_cli

# Commands with no --json, and why.
NO_JSON = {
    "run": "runs the agent in the foreground; the ledger and `sessions --json` hold the result",
    "demo": "a guided tour for people",
    "top": "a live full-screen view; `status --json` prints the same data",
    "shell-init": "prints shell code to eval",
    "statusline": "Claude Code's status line protocol: text for the bar",
    "proxy serve": "the daemon itself",
    "collector serve": "the collector server itself",
    "keys set": "reads a secret from a prompt; prints nothing",
    "keys rm": "removes one named key; prints nothing (keys list --json shows what is left)",
    "completions generate": "writes shell completion scripts",
    "completions show": "prints a shell completion script",
    "completions install": "installs a shell completion script",
}
# Commands that write, by name: any later command named like this needs --dry-run too.
WRITE_NAMES = {"set", "rm", "add", "update", "snooze", "reprice", "sync", "delete", "remove", "reset", "prune"}
WRITES = {"import claude", "import codex", "import cursor"}
# Commands that write without --dry-run, and why.
NO_DRY_RUN = {
    "keys set": "stores a secret the user types; nothing to preview",
    "keys rm": "removes one named key; `keys list` shows what is there",
}


def leaves():
    out = []

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        else:
            out.append((" ".join(path), {o for p in cmd.params for o in p.opts}))

    walk(typer.main.get_command(app), [])
    return out


LEAVES = leaves()


def test_the_walk_sees_the_whole_tree():
    names = {name for name, _ in LEAVES}
    assert {"status", "report", "export", "reprice", "budget set", "collector caps set", "version"} <= names
    assert len(names) >= 40


@pytest.mark.parametrize(("name", "opts"), LEAVES, ids=[n for n, _ in LEAVES])
def test_every_data_command_has_json(name, opts):
    if name in NO_JSON:
        return
    assert "--json" in opts, f"`agentmeter {name}` prints data: add --json (or list it in NO_JSON with why)"


@pytest.mark.parametrize(("name", "opts"), LEAVES, ids=[n for n, _ in LEAVES])
def test_every_writing_command_has_dry_run(name, opts):
    writes = name in WRITES or name.split()[-1] in WRITE_NAMES
    if not writes or name in NO_DRY_RUN:
        return
    assert "--dry-run" in opts, f"`agentmeter {name}` writes: add --dry-run (or list it in NO_DRY_RUN with why)"


def test_exemptions_name_real_commands():
    names = {name for name, _ in LEAVES}
    assert set(NO_JSON) <= names and set(NO_DRY_RUN) <= names and names >= WRITES


# Commands that need no argument and touch nothing outside AGENTMETER_HOME: each --json answers with the envelope.
SAFE = [
    "status",
    "sessions",
    "report",
    "export",
    "doctor",
    "version",
    "config show",
    "config path",
    "budget show",
    "keys list",
    "proxy status",
    "reconcile",
    "env",
    "prompt",
    "reprice --dry-run",
    "budget snooze 1h --dry-run",
    "budget set --daily 5 --dry-run",
    "budget test",
    "prices explain claude-opus-4-8",
    "sync --dry-run",
]


@pytest.mark.parametrize("cmd", SAFE)
def test_json_is_an_envelope(home, cmd):
    r = run_cli(*cmd.split(), "--json")
    assert r.returncode in (0, 1), r.stderr  # doctor exits 1 when a check fails
    data = json.loads(r.stdout)
    assert data["schema"].startswith("agentmeter.") and data["schema"].endswith("/1")


def test_dry_runs_write_nothing(home, tmp_path):
    home.mkdir(parents=True, exist_ok=True)
    assert run_cli("budget", "set", "--daily", "5", "--dry-run").returncode == 0
    assert not (home / "config.toml").exists()
    out = json.loads(run_cli("budget", "snooze", "1h", "--dry-run", "--json").stdout)
    assert out["dry_run"] is True
    assert json.loads(run_cli("budget", "show", "--json").stdout)["snoozed_until"] is None
    db = tmp_path / "team.db"
    assert (
        run_cli("collector", "caps", "set", "--db", str(db), "--team", "t", "--daily", "3", "--dry-run").returncode == 0
    )
    assert not db.exists()
    assert run_cli("collector", "token", "add", "--db", str(db), "--developer", "a@x", "--dry-run").returncode == 0
    assert not db.exists()


def test_reprice_dry_run_changes_no_cost(home):
    from agentmeter.core.clock import SystemClock
    from agentmeter.core.models import RequestRecord, Usage
    from agentmeter.home.paths import get_paths
    from agentmeter.ledger import open_ledger

    ledger = open_ledger(get_paths().ensure().ledger)
    now = SystemClock().now_ms()
    ledger.create_session({"id": "s1", "token_hash": "h", "agent": "claude", "started_at": now, "cwd": "/x"})
    ledger.insert_request(
        RequestRecord(
            request_id="r1",
            session_id="s1",
            started_at_ms=now,
            provider="anthropic",
            api="messages",
            method="POST",
            path="/v1/messages",
            model_requested="claude-opus-4-8",
            model_used="claude-opus-4-8",
            stream=False,
            status="ok",
            http_status=200,
            usage=Usage(input_tokens=1_000_000),
            cost_usd=123.0,
            agent="claude",
        )
    )
    ledger.close()
    r = json.loads(run_cli("reprice", "--dry-run", "--json").stdout)
    assert r["dry_run"] is True and r["changed"] == 1 and r["before_usd"] == 123.0 and r["after_usd"] != 123.0
    conn = sqlite3.connect(get_paths().ledger)
    assert conn.execute("SELECT cost_usd FROM requests").fetchone()[0] == 123.0
    conn.close()
    applied = json.loads(run_cli("reprice", "--json").stdout)
    assert applied["after_usd"] == r["after_usd"]  # the dry run predicted exactly what the real run did


def test_version_has_one_source():
    import agentmeter

    r = run_cli("--version")
    assert r.stdout.strip() == f"agentmeter {agentmeter.__version__}"
    assert json.loads(run_cli("version", "--json").stdout)["version"] == agentmeter.__version__
    from importlib.metadata import version

    assert version("agentmeter-proxy") == agentmeter.__version__  # the distribution name (issue 16)


def test_help_reads_well():
    r = run_cli("--help", env={"COLUMNS": "100"})
    assert "Environment" in r.stdout and "AGENTMETER_HOME" in r.stdout and "--debug" in r.stdout
    assert "Run, watch and cap" in r.stdout and "Reports and data" in r.stdout
    for name, _ in LEAVES:
        if name.split()[0] in ("run",):
            continue
        from typer.testing import CliRunner

        out = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "120"}).output
        assert "<bool>" not in out and "<str>" not in out, name


def test_doctor_exit_code_and_config_show_environment(home):
    assert run_cli("doctor", "--json").returncode == 0
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("[budget]\ndialy_usd = 20\n")
    assert run_cli("doctor").returncode == 1  # a failing check fails the command
    (home / "config.toml").write_text('[upstreams]\nopenai = "https://cfg.example"\n')
    env = {"AGENTMETER_PORT": "9911", "AGENTMETER_UPSTREAM_ANTHROPIC": "http://127.0.0.1:9/gw"}
    shown = json.loads(run_cli("config", "show", "--json", env=env).stdout)
    assert shown["proxy"]["port"] == 9911
    assert shown["upstreams"]["anthropic"] == "http://127.0.0.1:9/gw"
    assert shown["upstreams"]["openai"] == "https://cfg.example"
    assert shown["environment"]["AGENTMETER_PORT"] == "9911"


def test_collector_report_on_a_missing_db_is_an_error(tmp_path):
    missing = tmp_path / "missing.db"
    for cmd in (
        ["collector", "report"],
        ["collector", "token", "list"],
        ["collector", "caps", "show"],
        ["collector", "export"],
    ):
        r = run_cli(*cmd, "--db", str(missing))
        assert r.returncode != 0 and "no such collector database" in r.stderr, cmd
    assert not missing.exists()
