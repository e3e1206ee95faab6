"""A real Prometheus (the distribution's package) scrapes the collector's /metrics with the admin token as a
bearer credential, and every query in docs/grafana-dashboard.json runs on it and returns data."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from .observed import observed_collector
from .test_grafana_dashboard import dashboard, panels

pytest.importorskip("prometheus_client", reason="prometheus-client (the [collector] extra)")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
pytestmark = pytest.mark.skipif(
    not shutil.which(PROMETHEUS), reason="prometheus is not installed (apt-get install prometheus)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(base: str, promql: str, proc: subprocess.Popen, log, limit_s: float = 90.0) -> list[dict]:
    """Poll until the query has a result: a scrape has landed. A bound on waiting, not a timing assertion."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "prometheus exited:\n" + log.read_text()[-2000:]
        try:
            got = query(base, promql)
            if got:
                return got
        except OSError:
            pass  # not listening yet
        time.sleep(0.5)
    raise AssertionError(f"no result for {promql} within {limit_s:.0f}s:\n" + log.read_text()[-2000:])


@pytest.fixture
def prometheus(tmp_path, collector_db):
    c, tokens = observed_collector(tmp_path, collector_db)
    secret = tmp_path / "scrape-token"
    secret.write_text(tokens["admin"])
    secret.chmod(0o600)
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: agentmeter
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {secret}
    static_configs:
      - targets: ["127.0.0.1:{c.port}"]
""")
    port, log = free_port(), tmp_path / "prometheus.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        c.close()


def test_prometheus_scrapes_the_collector_with_the_admin_token(prometheus):
    base, proc, log = prometheus
    up = wait_for(base, 'up{job="agentmeter"} == 1', proc, log)
    assert up[0]["metric"]["instance"].startswith("127.0.0.1:")
    spend = wait_for(base, "sum by (team) (agentmeter_month_to_date_spend_usd)", proc, log)
    assert {r["metric"]["team"]: round(float(r["value"][1]), 6) for r in spend} == {"payments": 1.75, "search": 4.0}
    tokens = query(base, 'sum by (type) (agentmeter_month_to_date_tokens{team="search"})')
    assert {r["metric"]["type"]: float(r["value"][1]) for r in tokens} == {
        "input": 400,
        "cache_read": 4000,
        "cache_write": 200,
        "output": 160,
        "reasoning": 0,
    }
    cap = query(base, 'agentmeter_team_cap_usd{team="payments", window="month"}')
    assert float(cap[0]["value"][1]) == 100
    # Prometheus itself reports that it read the target without errors.
    assert query(base, 'scrape_samples_scraped{job="agentmeter"} > 0')


def test_every_dashboard_query_runs_on_prometheus_and_returns_data(prometheus):
    base, proc, log = prometheus
    wait_for(base, "agentmeter_month_to_date_spend_usd", proc, log)
    for p in panels(dashboard()):
        for t in p["targets"]:
            # Grafana's variables as a dashboard opened with "All" teams would send them; `delta` over [1h]
            # needs two samples, which the wait above and a 1s scrape interval give.
            expr = t["expr"].replace("$team", ".*")
            got = wait_for(base, expr, proc, log, limit_s=30)
            assert got, f"{p['title']}: {expr}"
