"""Issue 16 item 4: every table stays readable from 60 to 200 columns. The least useful columns go first;
the session id and the money are never cut, and no row wraps. Rendered by the real commands, at the width
a terminal reports through COLUMNS."""

from __future__ import annotations

import json
import re

import pytest

from agentmeter.render import usd
from conftest import run_cli

WIDTHS = (60, 80, 120, 200)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    """A ledger with real sessions, made by the demo (real daemon, simulated provider)."""
    home = tmp_path_factory.mktemp("demo") / "home"
    r = run_cli("demo", "--keep", env={"AGENTMETER_HOME": str(home), "COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    kept = re.search(r"throw-away home (\S+)", r.stdout).group(1)
    return kept, r.stdout


def at(width: int, home: str, *args: str):
    r = run_cli(*args, env={"AGENTMETER_HOME": home, "COLUMNS": str(width)})
    assert r.returncode == 0, r.stderr
    return r.stdout


def fits(out: str, width: int) -> None:
    for line in out.splitlines():
        assert len(line) <= width, f"{len(line)} > {width}: {line!r}"
    assert "…" not in re.sub(r"\S*…\S*", lambda m: "" if not m.group(0).startswith(("$", "sess")) else "…", out)


@pytest.mark.parametrize("width", WIDTHS)
def test_sessions_keep_ids_and_money(demo_home, width):
    home, _ = demo_home
    sessions = json.loads(at(200, home, "sessions", "--json"))["sessions"]
    out = at(width, home, "sessions")
    fits(out, width)
    for s in sessions:
        row = next(line for line in out.splitlines() if line.startswith(s["id"]))  # the whole id, one line
        assert usd(s["cost_usd"]) in row
    assert len(out.splitlines()) == len(sessions) + 1  # no wrapped rows


@pytest.mark.parametrize("width", WIDTHS)
def test_session_show_keeps_time_and_money(demo_home, width):
    home, _ = demo_home
    sid = json.loads(at(200, home, "sessions", "--json"))["sessions"][0]["id"]
    detail = json.loads(at(200, home, "session", "show", sid, "--json"))
    out = at(width, home, "session", "show", sid)
    fits(out, width)
    assert sid in out.splitlines()[0]
    table = out.splitlines()[3:]
    assert len(table) == len(detail["requests"]) + 1
    for r, line in zip(detail["requests"], table[1:], strict=True):
        assert usd(r["cost_usd"]) in line


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("by", ["session", "model", "day"])
def test_report_keeps_keys_and_money(demo_home, width, by):
    home, _ = demo_home
    data = json.loads(at(200, home, "report", "--by", by, "--json"))
    out = at(width, home, "report", "--by", by)
    fits(out, width)
    for r in data["rows"]:
        assert any(usd(r["cost_usd"]) in line for line in out.splitlines())
        if by == "session":
            assert any(line.startswith(r["key"]) for line in out.splitlines())


@pytest.mark.parametrize("width", (60, 80))
def test_the_demo_fits(tmp_path, demo_home, width):
    if width == 80:
        stdout = demo_home[1]  # the fixture ran it at 80 columns
    else:
        r = run_cli("demo", env={"AGENTMETER_HOME": str(tmp_path / "h"), "COLUMNS": str(width)})
        assert r.returncode == 0, r.stderr
        stdout = r.stdout
    table = stdout.split("$ agentmeter sessions\n", 1)[1].split("\n\n", 1)[0]
    fits(table, width)
    for sid in re.findall(r"session ([0-9a-f]{12})", stdout):
        assert any(line.startswith(sid) for line in table.splitlines())
    for line in stdout.splitlines():
        if re.search(r"· session [0-9a-f]{12}$", line):  # the run summary: one line, id and money whole
            assert len(line) <= width and re.search(r"\$\d+\.\d{4}", line) and "session " in line
