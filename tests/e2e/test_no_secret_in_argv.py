"""Issue 14 item 2: nothing agentmeter starts carries the session token or a key in argv.

argv is world-readable (`ps`, /proc/PID/cmdline). A real `agentmeter run codex exec …` runs against the
fake provider while every process's cmdline is sampled; the `codex` on PATH is a shim that records its
own /proc/self/cmdline (exactly what agentmeter passed) before exec'ing the real Codex, so the check
does not depend on catching a short-lived process.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from .conftest import REAL_ANTHROPIC_KEY, REAL_OPENAI_KEY, require_agent
from .test_run import summary_of, user  # noqa: F401 (user is a fixture)

SHIM = """#!/bin/sh
tr '\\000' ' ' < /proc/$$/cmdline >> "$ARGV_LOG"; echo >> "$ARGV_LOG"
printf 'ENV %s %s %s\\n' "$AGENTMETER_SESSION_OPENAI_URL" "$OPENAI_API_KEY" "$AGENTMETER_SESSION_TOKEN" >> "$ARGV_LOG"
exec "{real}" "$@"
"""


def _all_cmdlines() -> dict[int, str]:
    out = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                out[int(p.name)] = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return out


class Sampler(threading.Thread):
    """Every process's cmdline, sampled until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.seen.update(_all_cmdlines().values())

    def finish(self) -> set[str]:
        self.halt.set()
        self.join(10)
        self.seen.update(_all_cmdlines().values())
        return self.seen


@pytest.mark.e2e
def test_run_codex_puts_no_secret_in_any_argv(user, tmp_path):  # noqa: F811
    real = require_agent("codex")
    shim_dir, log = tmp_path / "shim", tmp_path / "argv.log"
    shim_dir.mkdir()
    shim = shim_dir / "codex"
    shim.write_text(SHIM.replace("{real}", real))
    shim.chmod(stat.S_IRWXU)
    env = {**user.env, "PATH": f"{shim_dir}{os.pathsep}{user.env['PATH']}", "ARGV_LOG": str(log)}
    work = tmp_path / "work"
    work.mkdir()

    sampler = Sampler()
    sampler.start()
    try:
        r = user.run("codex", "exec", "--skip-git-repo-check", "say hello", cwd=work, env=env)
    finally:
        cmdlines = sampler.finish()
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"

    lines = log.read_text().splitlines()
    argv = [ln for ln in lines if not ln.startswith("ENV ")]
    envs = [ln.split(" ")[1:] for ln in lines if ln.startswith("ENV ")]
    assert argv and "model_providers.agentmeter" in argv[0], lines  # we did record Codex's own argv
    session_url, virtual_key = envs[0][:2]
    token = session_url.split("/s/", 1)[1].split("/", 1)[0]  # the session's own URL, as a nested run gets it
    assert len(token) >= 32 and virtual_key.startswith("amk_"), envs
    control_token = (user.home / "run" / "control.token").read_text().strip()
    secrets = {
        "session token": token,
        "virtual key": virtual_key,
        "real OpenAI key": REAL_OPENAI_KEY,
        "real Anthropic key": REAL_ANTHROPIC_KEY,
        "control token": control_token,
    }
    assert any("proxy serve" in c for c in cmdlines), "the daemon's cmdline was not sampled"
    for what, value in secrets.items():
        leaks = [c for c in [*argv, *cmdlines] if value in c]
        assert not leaks, f"the {what} is in a command line: {leaks[0][:300]}"

    # Still works end to end: metered, the real key upstream, our header never relayed.
    sess = user.session(summary_of(r.stderr)["id"])
    assert sess["requests"] and all(row["status"] == "ok" for row in sess["requests"]), sess["requests"]
    posts = user.fake.posts("/v1/responses")
    assert len(posts) == len(sess["requests"])
    assert all(p["headers"].get("authorization") == f"Bearer {REAL_OPENAI_KEY}" for p in posts)
    assert not any("x-agentmeter-session" in p["headers"] for p in posts)
