"""Issue 16: `proxy status` and `doctor` show the upstreams the running daemon actually uses, and doctor says
when they differ from what the settings now say (an environment variable set after it started)."""

from __future__ import annotations

import json

from conftest import run_cli


def test_status_and_doctor_show_the_daemons_upstreams(home):
    started_with = {"AGENTMETER_PORT": "0", "AGENTMETER_UPSTREAM_ANTHROPIC": "http://127.0.0.1:9/corp-gateway"}
    r = run_cli("proxy", "start", "--json", env=started_with)
    assert r.returncode == 0, r.stderr
    try:
        status = json.loads(run_cli("proxy", "status", "--json").stdout)  # a shell without the variable
        assert status["running"] and status["upstreams"]["anthropic"] == "http://127.0.0.1:9/corp-gateway"
        text = " ".join(run_cli("proxy", "status").stdout.split())
        assert "upstream anthropic http://127.0.0.1:9/corp-gateway" in text
        checks = {c["name"]: c for c in json.loads(run_cli("doctor", "--json").stdout)["checks"]}
        up = checks["upstreams"]
        assert up["status"] == "warn" and "http://127.0.0.1:9/corp-gateway → https://api.anthropic.com" in up["detail"]
        assert "proxy stop" in up["fix"]
        same = {c["name"]: c for c in json.loads(run_cli("doctor", "--json", env=started_with).stdout)["checks"]}
        assert same["upstreams"]["status"] == "ok" and "corp-gateway" in same["upstreams"]["detail"]
    finally:
        run_cli("proxy", "stop")
