"""The benchmark suite still runs (benchmarks are not tests: this checks only that `--quick` completes).

Deselect with `-m "not benchmark_smoke"`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"


@pytest.mark.benchmark_smoke
def test_benchmark_suite_quick_runs():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--no-litellm"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for header in (
        "| streams | contender | requests | TTFB p50 | TTFB p99 |",
        "## Daemon memory (VmRSS)",
        "## Ledger ingest",
        "## `status` and `report` on a large ledger",
        "## `agentmeter run` launch overhead",
        "| target | measured | result |",
    ):
        assert header in out, f"missing {header!r} in:\n{out[-3000:]}"
    assert "| 64 | agentmeter |" in out
    assert "FAILED" not in out
    assert not (ROOT / "benchmarks" / "RESULTS.quick.md").exists()


def test_startup_ab_compares_two_trees():
    """benchmarks/startup_ab.py against this same tree as the baseline: every command ran in both homes (each with
    its own ledger and daemon) and the comparison is of like with like."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "startup_ab.py"),
            "--baseline",
            str(ROOT / "src"),
            "--runs",
            "1",
            "--rows",
            "400",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["month_spend_usd"] > 0
    assert set(got["commands"]) >= {"status --json", "run -- true (warm)", "shell-init bash", "statusline"}
    assert all(c["this_ms"] > 0 and c["baseline_ms"] > 0 for c in got["commands"].values())
