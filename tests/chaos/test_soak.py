"""A short soak on every run (10 s, 64 streams); `AGENTMETER_LONG=1` makes it the full 10 minutes."""

from __future__ import annotations

import os
import sys

import pytest

from .soak import soak

LONG = os.environ.get("AGENTMETER_LONG") == "1"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_64_streams_no_leak_and_every_response_has_its_row(tmp_path):
    r = soak(tmp_path, seconds=600 if LONG else 10, streams=64)
    done = r["client"].get("complete", 0)
    assert done > 0 and set(r["client"]) == {"attempts", "complete"}, r["client"]  # no error of any kind
    assert r["rows_by_status"] == {"ok": done}, r["rows_by_status"]  # one ok row per completed response
    assert r["rss_growth_pct"] < 10, r["rss_kib"]
    assert r["fds"]["end"] <= r["fds"]["baseline"] + 8, r["fds"]  # no descriptor leak under load
    assert r["fds"]["idle_after"] <= r["fds"]["end"], r["fds"]
    assert r["threads"]["end"] == r["threads"]["baseline"], r["threads"]
    assert r["ledger_backlog"] == 0 and r["ledger_dropped"] == 0
