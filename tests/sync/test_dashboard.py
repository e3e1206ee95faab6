"""The collector's dashboard opened in a real headless browser (Debian's chromium): the chargeback table and
the spend chart are there, with the pushed numbers."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from .helpers import BASE_MS, Client, Collector, request

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str, profile) -> str:
    out = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture
def filled(tmp_path, collector_db):
    c = Collector(collector_db).start()
    alice = Client(
        tmp_path / "a", "alice@example.com", "payments", c.token("alice@example.com", "payments", cost_center="CC-1")
    )
    bob = Client(tmp_path / "b", "bob@example.com", "search", c.token("bob@example.com", "search", cost_center="CC-1"))
    alice.add_usage(4, day=0, cost=1.5)
    alice.add_usage(2, day=1, agent="codex", model="gpt-5.1", repo="github.com/acme/api", cost=0.5)
    bob.add_usage(3, day=2, cost=2.0)
    assert alice.sync(c.url)["ok"] and bob.sync(c.url)["ok"]
    yield c
    c.close()


def month_of_fixture() -> str:
    return datetime.fromtimestamp(BASE_MS / 1000, UTC).strftime("%Y-%m")


def test_dashboard_needs_an_admin_token(filled):
    assert request(f"{filled.url}/dashboard")[0] == 401
    assert request(f"{filled.url}/dashboard?token=amc_wrong")[0] == 401


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install -y chromium)")
def test_dashboard_in_headless_chromium(filled, tmp_path):
    admin = filled.token("lead@example.com", admin=True)
    html = dump_dom(f"{filled.url}/dashboard?token={admin}&month={month_of_fixture()}", tmp_path / "profile")
    table = re.search(r'<table id="chargeback-table">(.*?)</table>', html, re.S)
    assert table, html[:2000]
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    assert ["payments", "alice@example.com", "CC-1", "6", "7.1k", "$7.00", "$0.00", "$7.00"] in cells, cells
    assert ["search", "bob@example.com", "CC-1", "3", "3.6k", "$6.00", "$0.00", "$6.00"] in cells, cells
    chart = re.search(r"<svg id=['\"]spend-chart['\"].*?</svg>", html, re.S)
    assert chart, "no chart"
    bars = re.findall(r"<rect class=['\"]bar['\"][^>]*height=['\"]([\d.]+)['\"]", chart.group(0))
    assert len(bars) >= 28 and sum(float(h) > 0 for h in bars) == 3  # a bar per day, three days with spend
    assert "alice@example.com" in re.search(r'<div id="burndown">(.*?)</div></div>', html, re.S).group(0)
    assert "github.com/acme/api" in html and "codex" in html
