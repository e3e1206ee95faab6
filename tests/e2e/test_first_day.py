# ruff: noqa: F811  (the `user` fixture is imported from test_run, and test parameters name it)
"""The first hour with `agentmeter run` (issue 16): Ctrl-C mid-stream, option order, a wrong home, an unknown
agent. Real `agentmeter run` processes against the fake provider, as in test_run.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from .test_run import AGENTMETER, SUMMARY, summary_of, user  # noqa: F401  (user is a fixture)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc (Linux)")

# An agent that streams one answer the provider stalls in the middle of, says so, and waits for Ctrl-C.
STALLED_STREAM = textwrap.dedent("""
    import json, os, sys, urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(
        os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
        data=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
                         "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01",
                 "content-type": "application/json", "x-fake-scenario": "stall:20"})
    r = opener.open(req, timeout=60)
    r.readline()
    print("STREAMING", flush=True)
    r.read()
    print("FINISHED", flush=True)
""")


def test_ctrl_c_mid_stream_counts_the_request_as_partial(user):
    proc = subprocess.Popen(
        [*AGENTMETER, "run", "--", sys.executable, "-c", STALLED_STREAM],
        env=user.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout.readline().strip() == "STREAMING", proc.stderr.read()
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole foreground group
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "FINISHED" not in out
    m = summary_of(err)
    assert m["requests"] == "1", err
    # Read at once, while the provider is still stalling: the abandoned request is already partial.
    rows = user.session(m["id"])["requests"]
    assert [(r["status"], r["partial"]) for r in rows] == [("partial", True)], rows


FAKE_TEXT_TAIL = "from the fake provider"


@pytest.mark.e2e
def test_own_options_after_the_agent_name_are_agentmeters(claude_bin, user, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    r = user.run("claude", "--budget", "5", "--tag=ticket=ABC-1", "-p", "say hello", cwd=work)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert FAKE_TEXT_TAIL in r.stdout
    s = user.session(summary_of(r.stderr)["id"])
    assert s["budget_usd"] == 5 and s["tags"] == {"ticket": "ABC-1"} and s["requests"], s


@pytest.mark.e2e
def test_a_launch_the_agent_refuses_records_no_session(claude_bin, user, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    r = user.run("claude", "--no-such-option-xyz", "-p", "hi", cwd=work)
    assert r.returncode != 0
    assert "no session recorded" in r.stderr, r.stderr
    assert user.sessions() == []


def test_a_command_that_cannot_be_executed_records_no_session(user, tmp_path):
    script = tmp_path / "not-executable.sh"
    script.write_text("echo hi\n")
    script.chmod(0o600)
    r = user.run("--", str(script))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) <= 2 and "could not start" in r.stderr and str(script) in r.stderr, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert user.sessions() == []


def test_unknown_agent_suggests_the_closest(user):
    r = user.run("cluade", "-p", "hi")
    assert r.returncode == 2
    assert "did you mean 'claude'?" in r.stderr, r.stderr
    assert user.sessions() == []


# Two requests through one session: key-mode Chat Completions, then a ChatGPT-login Responses call.
ONE_GATEWAY_CLIENT = textwrap.dedent("""
    import json, os, urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    def post(path, body, auth, extra=None):
        req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + path, data=json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + auth, "content-type": "application/json",
                                              **(extra or {})})
        with opener.open(req, timeout=20) as r:  # read to the end, as an agent does: hanging up after the
            print(path, r.status, len(r.read()), flush=True)  # headers is a disconnect, recorded `partial`
    post("/chat/completions", {"model": "gpt-5.1", "messages": [{"role": "user", "content": "hi"}]},
         os.environ["OPENAI_API_KEY"])
    post("/responses", {"model": "gpt-5.1-codex", "input": "hi"}, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
         {"chatgpt-account-id": "acct-123"})
""")


def test_route_follows_the_credential_when_openai_and_chatgpt_share_a_gateway(user):
    # One corporate gateway for both: the ChatGPT upstream is the same URL as the OpenAI one.
    env = {**user.env, "AGENTMETER_UPSTREAM_CHATGPT": user.env["AGENTMETER_UPSTREAM_OPENAI"]}
    r = user.run("--", sys.executable, "-c", ONE_GATEWAY_CLIENT, env=env)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    paths = [
        (q["path"], q["headers"].get("authorization", "")[:12]) for q in user.fake.received() if q["method"] == "POST"
    ]
    # The key-mode request keeps its /v1 (and carries the real key); the ChatGPT-login one loses it.
    assert paths == [("/v1/chat/completions", "Bearer sk-te"), ("/responses", "Bearer eyJhb")], paths
    rows = user.session(summary_of(r.stderr)["id"])["requests"]
    assert [(q["status"], q["subscription"]) for q in rows] == [("ok", False), ("ok", True)], rows


# 5 — a home agentmeter cannot write, an output path that does not exist


def _am(*args: str, env: dict, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, *AGENTMETER, *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def _assert_home_error(r: subprocess.CompletedProcess, path) -> None:
    assert r.returncode != 0, r.stdout
    assert str(path) in r.stderr and "AGENTMETER_HOME" in r.stderr, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 2, r.stderr  # the error and its hint


def test_home_that_is_a_file_is_a_clear_error_everywhere(user, tmp_path):
    bad = tmp_path / "home-is-a-file"
    bad.write_text("")
    env = {**user.env, "AGENTMETER_HOME": str(bad)}
    for args in (("status",), ("status", "--json"), ("run", "--", "true"), ("budget", "set", "--daily", "5")):
        r = _am(*args, env=env)
        _assert_home_error(r, bad)
        assert "$0" not in r.stdout  # no screen of zeros
    r = _am("doctor", "--json", env=env)
    home = [c for c in json.loads(r.stdout)["checks"] if c["name"] == "home"]
    assert home and home[0]["status"] == "fail" and str(bad) in home[0]["detail"], r.stdout


def _read_only_prefix(tmp_path) -> tuple[tuple[str, ...], object]:
    """A directory nothing can be written to, even by root (CI runs as root): chmod for a normal user, a
    read-only tmpfs in a private mount namespace (unshare -m) for root."""
    ro = tmp_path / "read-only"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o500)
        return (), ro
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o ro none {ro} && ! touch {ro}/x"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"running as root without a way to make a read-only directory (unshare -m: {probe.stderr})")
    return ("unshare", "-m", "sh", "-c", f'mount -t tmpfs -o ro none {ro} && exec "$@"', "sh"), ro


def test_read_only_home_fails_status_run_and_doctor(user, tmp_path):
    prefix, ro = _read_only_prefix(tmp_path)
    env = {**user.env, "AGENTMETER_HOME": str(ro / "home")}
    for args in (("status",), ("run", "--", "true")):
        _assert_home_error(_am(*args, env=env, prefix=prefix), ro)
    r = _am("doctor", "--json", env=env, prefix=prefix)
    home = [c for c in json.loads(r.stdout)["checks"] if c["name"] == "home"]
    assert home and home[0]["status"] == "fail", r.stdout
    assert "read-only" in home[0]["detail"] or "not writable" in home[0]["detail"], home


def test_output_path_in_a_missing_folder(user, tmp_path):
    out = tmp_path / "no-such-folder" / "usage.csv"
    r = _am("export", "--format", "csv", "--output", str(out), env=user.env)
    assert r.returncode != 0 and f"folder {out.parent} does not exist" in r.stderr, r.stderr
    assert f"mkdir -p {out.parent}" in r.stderr and len(r.stderr.strip().splitlines()) == 2, r.stderr
    assert "internal error" not in r.stderr


def test_shell_hook_starts_the_agent_unmetered_when_the_home_is_broken(user, tmp_path):
    # A stand-in `claude` (no network: unmetered traffic would go to the real provider).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_claude = bin_dir / "claude"
    fake_claude.write_text('#!/bin/sh\necho "claude ran: $*"; echo "key=${AGENTMETER_ANTHROPIC_API_KEY:-none}"\n')
    fake_claude.chmod(0o755)
    hook = _am("shell-init", "bash", env=user.env)
    assert hook.returncode == 0, hook.stderr
    bad = tmp_path / "home-is-a-file"
    bad.write_text("")
    env = {**user.env, "AGENTMETER_HOME": str(bad), "PATH": f"{bin_dir}{os.pathsep}{user.env['PATH']}"}
    r = subprocess.run(
        ["bash", "--norc", "-c", hook.stdout + "\nclaude -p hi"], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["claude ran: -p hi", "key=none"], r.stdout
    [line] = r.stderr.strip().splitlines()  # said once, in one line
    assert "unmetered" in line and str(bad) in line, r.stderr
