"""Killing the daemon at random moments under streaming load loses no row and no session.

By default three trials (a few seconds); `AGENTMETER_LONG=1` runs the full 50 (`crash_trials.py` prints
the whole report).
"""

from __future__ import annotations

import os
import sys

import pytest

from .crash_trials import crash_trials

LONG = os.environ.get("AGENTMETER_LONG") == "1"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_sigkill_under_16_streams_loses_nothing(tmp_path):
    r = crash_trials(tmp_path, trials=50 if LONG else 3, streams=16, seed=7)
    assert r["run_exit_code"] == 0, r  # the agent finished: every turn eventually completed
    assert r["complete"] > 0 and r["interrupted"] + r["attempts"].get("no_response", 0) > 0, r  # kills did land
    # Every response a client received completely has its ok row; every interrupted one has a row.
    assert r["rows_lost"] == 0, r["lost_examples"]
    assert r["duplicate_rows"] == 0, r
    assert set(r["interrupted_rows"]) <= {"partial", "ok"}, r
    # Requests that never got an answer are retried by the agent, not billed twice in the ledger.
    assert r["rows_by_status"].get("ok", 0) >= r["complete"], r
    assert r["attempts"].get("http_error", 0) == 0, r  # no refusals, no 5xx made up by agentmeter
    # One session throughout, closed with the agent's exit code by the wrapper.
    assert r["sessions"] == 1 and r["session_ended"] and r["session_exit_code"] == 0, r
    assert r["restart_s"]["max"] < 10, r
