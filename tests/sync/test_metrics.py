"""GET /metrics on the collector: Prometheus exposition of month-to-date spend, requests, tokens, team caps and
last push per developer, read from real pushes into a real collector, behind the admin token or a network."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from agentmeter.collector import metrics
from conftest import run_cli

from .helpers import request
from .observed import NOW, observed_collector

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus-client (the [collector] extra)")


def scrape(url: str, token: str | None = None) -> tuple[int, str, dict]:
    status, body, headers = request(f"{url}/metrics", token=token)
    return status, body if isinstance(body, str) else "", headers


def samples(text: str) -> dict[tuple, float]:
    """{(name, (label, value), …): value} for every sample in an exposition."""
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, *sorted(s.labels.items()))] = s.value
    return out


@pytest.fixture
def observed(tmp_path, collector_db):
    c, tokens = observed_collector(tmp_path, collector_db)
    yield c, tokens
    c.close()


def test_metrics_show_month_to_date_spend_tokens_caps_and_last_push(observed):
    c, tokens = observed
    status, text, headers = scrape(c.url, tokens["admin"])
    assert status == 200, text
    assert headers["Content-Type"].startswith("text/plain; version=")  # the text exposition format
    got = samples(text)

    def value(name, **labels):
        return got[("agentmeter_" + name, *sorted(labels.items()))]

    pay_claude = {"team": "payments", "agent": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5"}
    pay_codex = {"team": "payments", "agent": "codex", "provider": "anthropic", "model": "gpt-5.1"}
    search = {"team": "search", "agent": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5"}
    # October's $5 request is not in November's month-to-date.
    assert value("month_to_date_spend_usd", **pay_claude) == pytest.approx(0.75)
    assert value("month_to_date_spend_usd", **pay_codex) == pytest.approx(1.0)
    assert value("month_to_date_spend_usd", **search) == pytest.approx(4.0)
    assert value("month_to_date_requests", **pay_claude) == 3
    assert value("month_to_date_requests", **search) == 4
    assert value("month_to_date_tokens", type="input", **pay_claude) == 300
    assert value("month_to_date_tokens", type="cache_read", **pay_claude) == 3000
    assert value("month_to_date_tokens", type="cache_write", **pay_claude) == 150
    assert value("month_to_date_tokens", type="output", **search) == 160
    assert value("month_to_date_tokens", type="reasoning", **search) == 0
    assert value("month_to_date_developers", team="payments") == 1
    assert value("team_member_max_spend_usd", team="payments") == pytest.approx(1.75)
    assert value("team_cap_usd", team="payments", window="month", applies="member") == 100
    assert value("team_cap_tokens", team="payments", window="day", applies="member") == 5_000_000
    assert ("agentmeter_team_cap_usd", ("applies", "member"), ("team", "search"), ("window", "month")) not in got
    # The collector stamps rows with its own clock when they arrive.
    assert value("developer_last_push_timestamp_seconds", developer="alice@example.com") == NOW.timestamp()
    assert value("developer_last_push_timestamp_seconds", developer="bob@example.com") == NOW.timestamp()


def test_only_the_last_push_gauge_is_per_developer_and_nothing_names_a_repo_or_session(observed):
    c, tokens = observed
    families = list(parser.text_string_to_metric_families(scrape(c.url, tokens["admin"])[1]))
    names = {f.name for f in families}
    assert names == {"agentmeter_" + n for n in metrics.SERIES}
    for f in families:
        for s in f.samples:
            assert not {"repo", "branch", "session", "session_id", "cost_center"} & set(s.labels)
            if "developer" in s.labels:
                assert f.name == "agentmeter_developer_last_push_timestamp_seconds"


def test_metrics_need_the_admin_token(observed):
    c, tokens = observed
    status, _, headers = scrape(c.url)
    assert status == 401 and headers.get("WWW-Authenticate") == "Bearer"
    assert scrape(c.url, tokens["alice"])[0] == 403  # a developer's push token reads nothing
    assert scrape(c.url, "amc_not-a-token")[0] == 401


def test_a_configured_network_scrapes_without_a_token(tmp_path, make_collector_db):
    inside, _ = observed_collector(
        tmp_path / "in", make_collector_db("in"), metrics_networks=metrics.parse_networks(["127.0.0.0/8"])
    )
    outside, tokens = observed_collector(
        tmp_path / "out", make_collector_db("out"), metrics_networks=metrics.parse_networks(["10.0.0.0/8"])
    )
    try:
        status, text, _ = scrape(inside.url)
        assert status == 200 and "agentmeter_month_to_date_spend_usd" in text
        assert scrape(outside.url)[0] == 401  # loopback is not in 10.0.0.0/8: the token is still needed
        assert scrape(outside.url, tokens["admin"])[0] == 200
        # The network rule is for /metrics only.
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{inside.url}/v1/report", timeout=10)
        assert err.value.code == 401
    finally:
        inside.close()
        outside.close()


def test_network_matching():
    nets = metrics.parse_networks(["10.0.0.0/8", "::1", "192.168.1.7"])
    assert nets[1] == ipaddress.ip_network("::1/128")
    assert metrics.network_allows(nets, "10.2.3.4")
    assert metrics.network_allows(nets, "::ffff:10.2.3.4")  # a v4 peer on a dual-stack socket
    assert metrics.network_allows(nets, "192.168.1.7") and not metrics.network_allows(nets, "192.168.1.8")
    assert not metrics.network_allows(nets, None) and not metrics.network_allows(nets, "")
    assert not metrics.network_allows((), "10.0.0.1")
    with pytest.raises(ValueError, match="'ten' is not an IP network"):
        metrics.parse_networks(["ten"])


def test_serve_takes_metrics_networks_from_the_command_line(tmp_path, collector_db):
    """The real `collector serve` process: --metrics-network opens /metrics to loopback without a token; a bad
    network is one line, no traceback."""
    bad = run_cli("collector", "serve", "--db", str(collector_db), "--metrics-network", "ten")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--metrics-network: 'ten' is not an IP network" in bad.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = str(collector_db)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentmeter",
            "collector",
            "serve",
            "--db",
            db,
            "--port",
            str(port),
            "--metrics-network",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url, status = f"http://127.0.0.1:{port}", None
        for _ in range(200):  # until it listens (bounded; not a timing assertion)
            try:
                status = request(f"{url}/v1/health")[0]
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200
        status, text, _ = scrape(url)
        assert status == 200 and "# TYPE agentmeter_scrape_rows gauge" in text
        assert request(f"{url}/v1/report")[0] == 401  # everything else still needs a token
    finally:
        proc.terminate()
        proc.wait(timeout=30)
