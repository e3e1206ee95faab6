"""Transcripts written by the real Claude Code and Codex CLI, run through a real agentmeter daemon against the
fake provider (and once around it), then imported:

* into the proxy's own ledger: the responses the proxy metered add nothing, the run made outside adds one;
* into a fresh ledger: exactly the responses, with the same token buckets the proxy recorded;
* a second time: nothing.

The fixtures are recorded here, by the test, never written by hand.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from agentmeter.home.paths import get_paths

from .conftest import daemon as _daemon  # noqa: F401  (fixtures come through conftest)

pytestmark = pytest.mark.e2e

BUCKETS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def _run(cmd: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    from e2e.conftest import run_group

    cwd.mkdir(parents=True, exist_ok=True)
    r = run_group(cmd, env=env, cwd=cwd)
    assert r.returncode == 0, f"{cmd[:3]} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def _agentmeter(daemon, *args: str, home: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**daemon.env, "HOME": str(daemon.fakehome)}
    if home is not None:
        env["AGENTMETER_HOME"] = str(home)
    r = subprocess.run(
        [sys.executable, "-m", "agentmeter", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert r.returncode == 0, f"agentmeter {' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def _import(daemon, agent: str, *paths: Path, home: Path | None = None) -> dict:
    out = json.loads(_agentmeter(daemon, "import", agent, *map(str, paths), "--json", home=home).stdout)
    assert out["schema"] == "agentmeter.import/1" and not out["unreadable"] and not out["malformed"], out
    return out


def _rows(ledger: Path, agent: str) -> list[dict]:
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [
            dict(r)
            for r in conn.execute(
                "SELECT * FROM requests WHERE agent = ? AND status = 'ok' ORDER BY started_at", (agent,)
            )
        ]
    finally:
        conn.close()


def _configure_fake(daemon, **cfg) -> None:
    req = urllib.request.Request(
        daemon.fake.url + "/_fake/config",
        data=json.dumps(cfg).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).read()


def _assert_same_responses(proxy: list[dict], imported: list[dict]) -> None:
    """Every metered response is there once, with the buckets the proxy read off the wire."""
    by_id = {r["response_id"]: r for r in imported}
    assert len(by_id) == len(imported)
    for p in proxy:
        got = by_id.get(p["response_id"])
        assert got is not None, f"{p['response_id']} missing from the import"
        assert {b: got[b] for b in BUCKETS} == {b: p[b] for b in BUCKETS}
        assert got["agent_session_id"] == p["agent_session_id"]
        assert got["model_used"] == p["model_used"]
        assert got["cost_usd"] == pytest.approx(p["cost_usd"])


def test_claude_code_transcripts(claude_bin, daemon, tmp_path):
    # A 1-hour cache write too, so the 5-minute/1-hour split is checked on what Claude Code writes.
    _configure_fake(
        daemon,
        usage={
            "input_tokens": 1200,
            "cache_read_tokens": 18000,
            "cache_write_tokens": 1204,
            "cache_write_1h_tokens": 400,
            "output_tokens": 58,
        },
    )
    se = daemon.session_env("claude")
    work = tmp_path / "work"
    env = daemon.agent_env(se["env"])
    _run([claude_bin, "-p", "say hello"], env, work)
    [first] = (daemon.fakehome / ".claude" / "projects").rglob("*.jsonl")
    _run([claude_bin, "-p", "--resume", first.stem, "again"], env, work)
    _run([claude_bin, "-p", "--resume", first.stem, "--fork-session", "fork it"], env, work)
    # once around agentmeter, straight to the provider: only the transcript knows about it
    outside = daemon.agent_env({"ANTHROPIC_BASE_URL": daemon.fake.url, "ANTHROPIC_API_KEY": "sk-ant-test-direct"})
    _run([claude_bin, "-p", "not metered"], outside, tmp_path / "elsewhere")
    files = sorted((daemon.fakehome / ".claude" / "projects").rglob("*.jsonl"))
    assert len(files) == 3, files

    proxy = _rows(get_paths().ledger, "claude")
    assert len(proxy) == 3 and all(r["cache_write_1h_tokens"] == 400 for r in proxy)

    # 1. into the proxy's own ledger, the daemon running
    got = _import(daemon, "claude")
    assert (got["matched_proxy"], got["added"], got["files_read"]) == (3, 1, 3), got
    assert got["added_tokens"]["cache_write_1h_tokens"] == 400
    again = _import(daemon, "claude")
    assert (again["added"], again["files_unchanged"]) == (0, 3), again
    everything = _rows(get_paths().ledger, "claude")
    assert len(everything) == 4 and {r["source"] for r in everything} == {"proxy", "claude-log"}

    # 2. into a fresh ledger: exactly the responses
    fresh = tmp_path / "fresh-home"
    got = _import(daemon, "claude", home=fresh)
    assert (got["added"], got["matched_proxy"]) == (4, 0), got
    imported = _rows(fresh / "ledger.db", "claude")
    _assert_same_responses(proxy, imported)
    sessions = json.loads(_agentmeter(daemon, "sessions", "--json", home=fresh).stdout)["sessions"]
    # the original, its fork (one response of its own) and the run outside agentmeter
    assert sorted(s["requests"] for s in sessions) == [1, 1, 2]
    assert all(s["agent"] == "claude" and s["tags"] == {"source": "claude-log"} for s in sessions)
    assert {s["cwd"] for s in sessions} == {str(work), str(tmp_path / "elsewhere")}
    assert _import(daemon, "claude", home=fresh)["added"] == 0

    # 3. reconcile in the proxy's ledger: the run session agrees with the transcripts
    rec = json.loads(_agentmeter(daemon, "reconcile", "--json").stdout)
    assert rec["schema"] == "agentmeter.reconcile/1"
    [run] = [g for g in rec["groups"] if g["session"] == se["session_id"]]
    assert run["proxy"] == run["log"] and run["causes"] == []
    [elsewhere] = [g for g in rec["groups"] if g["session"] != se["session_id"]]
    assert elsewhere["proxy"]["requests"] == 0 and elsewhere["log"]["requests"] == 1
    assert [c["cause"] for c in elsewhere["causes"]] == ["outside_agentmeter"]


def _codex(codex_bin: str, base_url: str, *args: str) -> list[str]:
    provider = (
        f'{{name="OpenAI",base_url="{base_url}",wire_api="responses",env_key="OPENAI_API_KEY",'
        f"supports_websockets=false}}"
    )
    return [
        codex_bin,
        "exec",
        "--skip-git-repo-check",
        "-c",
        'model_provider="agentmeter"',
        "-c",
        f"model_providers.agentmeter={provider}",
        *args,
    ]


def test_codex_rollouts(codex_bin, daemon, tmp_path):
    _configure_fake(
        daemon,
        usage={
            "input_tokens": 1200,
            "cache_read_tokens": 18000,
            "cache_write_tokens": 0,
            "output_tokens": 58,
            "reasoning_tokens": 20,
        },
    )
    se = daemon.session_env("codex")
    base = se["env"]["OPENAI_BASE_URL"]
    env, work = daemon.agent_env(se["env"]), tmp_path / "work"
    _run(_codex(codex_bin, base, "say hello"), env, work)
    [first] = (daemon.fakehome / ".codex" / "sessions").rglob("rollout-*.jsonl")
    sid = re.search(r"([0-9a-f-]{36})\.jsonl$", first.name).group(1)
    _run(_codex(codex_bin, base, "resume", sid, "second turn"), env, work)
    _run(_codex(codex_bin, base, "fork", sid, "forked turn"), env, work)
    outside = daemon.agent_env({"OPENAI_API_KEY": "sk-test-direct"})
    _run(_codex(codex_bin, daemon.fake.url + "/v1", "not metered"), outside, tmp_path / "elsewhere")
    rollouts = sorted((daemon.fakehome / ".codex" / "sessions").rglob("rollout-*.jsonl"))
    assert len(rollouts) == 3, rollouts
    assert any('"forked_from_id"' in p.read_text() for p in rollouts), "codex exec fork wrote no fork metadata"

    proxy = _rows(get_paths().ledger, "codex")
    assert len(proxy) == 3 and all(r["reasoning_tokens"] == 20 for r in proxy)

    got = _import(daemon, "codex")
    assert (got["matched_proxy"], got["added"]) == (3, 1), got
    assert _import(daemon, "codex")["added"] == 0

    fresh = tmp_path / "fresh-home"
    got = _import(daemon, "codex", home=fresh)
    assert got["added"] == 4, got  # the fork's inherited history is not counted again
    _assert_same_responses(proxy, _rows(fresh / "ledger.db", "codex"))

    # The same rollouts as an older Codex wrote them (no token_usage_record, only cumulative token_count):
    # differences of the counters, minus the fork's inherited prefix, give the same buckets.
    legacy = tmp_path / "legacy"
    for p in rollouts:
        dst = legacy / p.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(
            "".join(
                line
                for line in p.read_text().splitlines(keepends=True)
                if '"type":"token_usage_record"' not in line.replace(" ", "")
            )
        )
    old_home = tmp_path / "legacy-home"
    got = _import(daemon, "codex", legacy, home=old_home)
    assert got["added"] == 4, got
    old = _rows(old_home / "ledger.db", "codex")
    new = _rows(fresh / "ledger.db", "codex")
    per_session = {}
    for rows in (old, new):
        for r in rows:
            per_session.setdefault(r["agent_session_id"], []).append(tuple(r[b] for b in BUCKETS))
    for sid_, got_buckets in per_session.items():
        half = len(got_buckets) // 2
        assert sorted(got_buckets[:half]) == sorted(got_buckets[half:]), sid_
    # and matched against the live rows by session, time and tokens: nothing new in the proxy's ledger
    got = _import(daemon, "codex", legacy)
    assert got["added"] == 0, got
