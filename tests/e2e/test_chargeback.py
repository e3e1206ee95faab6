"""Chargeback dimensions end to end (issue 20 item 7): real `agentmeter run` sessions through the daemon and the
fake provider, in a real git repository. Tags given to `run` group `report --by tag:KEY`; requests carrying
Claude Code's sub-agent header (x-claude-code-agent-id, sent by the 2.1 binary for spawned sub-agents) group
`report --by subagent`; the commit each session ended on groups `report --by commit` and filters `--commits A..B`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from .test_run import AGENTMETER, User, user  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses the e2e daemon fixtures (Linux)")

# A stand-in agent: turns on the main thread, then (optionally) one from a sub-agent, as Claude Code sends them.
AGENT = textwrap.dedent("""
    import json, os, sys, urllib.request
    def turn(out, agent_id=None):
        headers = {"Content-Type": "application/json", "x-api-key": os.environ["ANTHROPIC_API_KEY"],
                   "anthropic-version": "2023-06-01",
                   "x-fake-usage": json.dumps({"input_tokens": 100, "output_tokens": out})}
        if agent_id:
            headers["x-claude-code-agent-id"] = agent_id
        body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
                "messages": [{"role": "user", "content": "hi"}]}
        req = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
                                     data=json.dumps(body).encode(), headers=headers)
        urllib.request.urlopen(req, timeout=30).read()
    turn(int(sys.argv[1]))
    turn(int(sys.argv[1]))
    if len(sys.argv) > 2:
        turn(1000, agent_id=sys.argv[2])
""")


def git(repo, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo, name: str) -> str:
    (repo / name).write_text(name)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", name)
    return git(repo, "rev-parse", "HEAD")


def report(u: User, repo, *args: str) -> dict:
    r = subprocess.run(
        [*AGENTMETER, "report", "--since", "1d", "--json", *args],
        env=u.env,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_tags_subagents_and_commits_through_real_runs(user, tmp_path):  # noqa: F811
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    c1 = commit(repo, "one")
    script = tmp_path / "agent.py"
    script.write_text(AGENT)

    r = user.run(
        "--tag",
        "ticket=T-1",
        "--tag",
        "feature=search",
        "--",
        sys.executable,
        str(script),
        "10",
        "agent-7f3a",
        cwd=repo,
    )
    assert r.returncode == 0, r.stderr
    c2 = commit(repo, "two")
    c3 = commit(repo, "three")
    r = user.run("--tag", "ticket=T-2", "--", sys.executable, str(script), "20", cwd=repo)
    assert r.returncode == 0, r.stderr

    by_tag = {row["key"]: row for row in report(user, repo, "--by", "tag:ticket")["rows"]}
    assert set(by_tag) == {"T-1", "T-2"}
    assert by_tag["T-1"]["requests"] == 3 and by_tag["T-1"]["output_tokens"] == 1020
    assert by_tag["T-2"]["requests"] == 2 and by_tag["T-2"]["output_tokens"] == 40
    by_feature = {row["key"]: row["requests"] for row in report(user, repo, "--by", "tag:feature")["rows"]}
    assert by_feature == {"search": 3, "": 2}  # the second session has no feature tag

    by_sub = {row["key"]: row for row in report(user, repo, "--by", "subagent")["rows"]}
    assert set(by_sub) == {"", "agent-7f3a"}
    assert by_sub["agent-7f3a"]["requests"] == 1 and by_sub["agent-7f3a"]["output_tokens"] == 1000
    assert by_sub[""]["requests"] == 4

    by_commit = {row["key"]: row for row in report(user, repo, "--by", "commit")["rows"]}
    assert set(by_commit) == {c1, c3} and by_commit[c1]["requests"] == 3 and by_commit[c3]["requests"] == 2
    ranged = report(user, repo, "--by", "tag:ticket", "--commits", f"{c1}..HEAD")
    assert [row["key"] for row in ranged["rows"]] == ["T-2"] and ranged["totals"]["requests"] == 2
    assert sorted(ranged["commits"]) == sorted([c2, c3])
    assert report(user, repo, "--by", "day", "--commits", c1)["totals"]["requests"] == 3

    sessions = json.loads(
        subprocess.run(
            [*AGENTMETER, "sessions", "--json"], env=user.env, capture_output=True, text=True, timeout=60
        ).stdout
    )["sessions"]
    assert sorted(s["end_commit"] for s in sessions) == sorted([c1, c3])


def test_bad_groupings_and_ranges_are_one_line_errors(user, tmp_path):  # noqa: F811
    r = subprocess.run(
        [*AGENTMETER, "report", "--by", "tag:"], env=user.env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "tag:ticket" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [*AGENTMETER, "report", "--commits", "nope..HEAD"],
        env=user.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "commit range" in r.stderr and "Traceback" not in r.stderr


def test_tags_and_commits_reach_the_collector_report(user, tmp_path, collector_db):  # noqa: F811
    """The tags and end commit ride the session line items of a real `agentmeter sync`; `collector report --by
    tag:KEY` (CLI and HTTP) groups them, on SQLite and PostgreSQL."""
    from sync.helpers import Collector, request

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    c1 = commit(repo, "one")
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    assert user.run("--tag", "ticket=T-1", "--", sys.executable, str(script), "10", cwd=repo).returncode == 0
    assert user.run("--", sys.executable, str(script), "20", cwd=repo).returncode == 0

    c = Collector(collector_db).start()
    try:
        token = c.token("alice@example.com", "payments")
        env = {**user.env, "AGENTMETER_COLLECTOR_URL": c.url, "AGENTMETER_COLLECTOR_TOKEN": token}
        r = subprocess.run([*AGENTMETER, "sync", "--json"], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout + r.stderr
        lead = c.token("lena@example.com", "payments", role="lead")
        status, body, _ = request(f"{c.url}/v1/report?by=tag:ticket", token=lead)
        assert status == 200, body
        rows = {row["key"]: row for row in body["rows"]}
        assert set(rows) == {"T-1", ""} and rows["T-1"]["requests"] == 2 and rows["T-1"]["output_tokens"] == 20
        assert rows[""]["output_tokens"] == 40
    finally:
        c.close()
    r = subprocess.run(
        [*AGENTMETER, "collector", "report", "--db", str(collector_db), "--by", "tag:ticket", "--json"],
        env=user.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert {row["key"]: row["sessions"] for row in json.loads(r.stdout)["rows"]} == {"T-1": 1, "": 1}
    from agentmeter.collector import engine

    db = engine.connect(collector_db)
    try:
        assert {row[0] for row in db.execute("SELECT end_commit FROM sessions")} == {c1}
    finally:
        db.close()


def _session_item(key: str, requests: int, cost: float, **extra) -> dict:
    return {
        "key": key * 64,
        "session_id": f"sess-{key}",
        "agent": "claude",
        "day": "2026-11-20",
        "started_at": 1_795_000_000_000,
        "ended_at": 1_795_000_100_000,
        "requests": requests,
        "output_tokens": 10 * requests,
        "cost_usd": cost,
        **extra,
    }


def test_subagents_and_commits_reach_the_collector_report(user, tmp_path, collector_db):  # noqa: F811
    """A real session's sub-agent sums and its end commit ride the session line item of a real `agentmeter
    sync` (the sub-agents are a contract extension: the rollups carry no sub-agent); `collector report --by
    subagent|commit` (CLI and HTTP) group them, lead-scoped, on SQLite and PostgreSQL. A session item whose
    sub-agents do not fit inside it is refused alone."""
    from sync.helpers import Collector, request

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    c1 = commit(repo, "one")
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    assert user.run("--", sys.executable, str(script), "10", "agent-explore-1", cwd=repo).returncode == 0
    c2 = commit(repo, "two")
    assert user.run("--", sys.executable, str(script), "20", "agent-explore-2", cwd=repo).returncode == 0
    assert user.run("--", sys.executable, str(script), "30", cwd=repo).returncode == 0

    c = Collector(collector_db).start()
    try:
        token = c.token("alice@example.com", "payments")
        env = {**user.env, "AGENTMETER_COLLECTOR_URL": c.url, "AGENTMETER_COLLECTOR_TOKEN": token}
        r = subprocess.run([*AGENTMETER, "sync", "--json"], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout + r.stderr

        # another team's session with a sub-agent, pushed straight: a payments lead never sees it
        bob = c.token("bob@example.com", "search")
        good = _session_item("b", 3, 0.3, subagents=[{"id": "agent-bob", "requests": 1, "cost_usd": 0.1}])
        too_big = _session_item("c", 1, 0.1, subagents=[{"id": "agent-x", "requests": 1, "cost_usd": 0.5}])
        body = {"schema": "agentmeter.push/1", "device_id": "dev-bob-123", "sessions": [good, too_big]}
        status, got, _ = request(f"{c.url}/v1/push", method="POST", token=bob, body=body)
        assert status == 200 and got["accepted"]["sessions"] == 1, got
        assert [x["field"] for x in got["rejected"]] == ["sessions[1].subagents"], got

        lead = c.token("lena@example.com", "payments", role="lead")
        status, body, _ = request(f"{c.url}/v1/report?by=subagent", token=lead)
        assert status == 200 and body["team"] == "payments", body
        rows = {row["key"]: row for row in body["rows"]}
        assert set(rows) == {"", "agent-explore-1", "agent-explore-2"}, rows
        assert rows["agent-explore-1"]["requests"] == 1 and rows["agent-explore-1"]["output_tokens"] == 1000
        assert rows["agent-explore-2"]["output_tokens"] == 1000
        assert rows[""]["requests"] == 6 and rows[""]["output_tokens"] == 2 * (10 + 20 + 30)
        assert sum(r["cost_usd"] for r in rows.values()) == pytest.approx(body["totals"]["sessions_cost_usd"])

        status, body, _ = request(f"{c.url}/v1/report?by=commit", token=lead)
        assert status == 200, body
        by_commit = {row["key"]: (row["sessions"], row["output_tokens"]) for row in body["rows"]}
        assert by_commit == {c1: (1, 1020), c2: (2, 1040 + 60)}, by_commit

        finance = c.token("fin@example.com", role="finance")
        status, body, _ = request(f"{c.url}/v1/report?by=subagent", token=finance)
        assert status == 200 and {row["key"] for row in body["rows"]} >= {"agent-bob", "agent-explore-1"}, body
        assert request(f"{c.url}/v1/report?by=subagents", token=finance)[0] == 400
    finally:
        c.close()
    for by, expect in (("subagent", {"", "agent-explore-1", "agent-explore-2", "agent-bob"}), ("commit", {c1, c2, ""})):
        r = subprocess.run(
            [*AGENTMETER, "collector", "report", "--db", str(collector_db), "--by", by, "--json"],
            env=user.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        assert {row["key"] for row in json.loads(r.stdout)["rows"]} == expect
    r = subprocess.run(
        [*AGENTMETER, "collector", "report", "--db", str(collector_db), "--by", "subagent"],
        env=user.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and "agent-explore-1" in r.stdout, r.stderr
