"""`agentmeter run -- true` against plain `true`: the launch overhead a developer pays on every agent start.

    python benchmarks/launch_overhead.py [--runs 20] [--quick]

Warm: the daemon is already running (the everyday case). Cold: no daemon, so `run` starts one first.
Runs are interleaved with plain `true` so machine drift hits both alike, with bytecode cached (see
status_scale.bytecode_env). Target (issue 3): ≤ 150 ms added, warm. Everything happens in a throw-away
AGENTMETER_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from status_scale import bytecode_env

TARGET_WARM_MS = 150


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t0) * 1000


def measure(runs: int = 20) -> dict:
    """Median `agentmeter run -- true` vs `true`, warm and cold daemon; importable by benchmarks/run.py."""
    true = ["/bin/true"] if os.path.exists("/bin/true") else ["true"]
    run = [sys.executable, "-m", "agentmeter", "run", "--quiet", "--", *true]
    stop = [sys.executable, "-m", "agentmeter", "proxy", "stop"]
    with tempfile.TemporaryDirectory(prefix="agentmeter-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
        env.update({"AGENTMETER_HOME": home, "AGENTMETER_PORT": "0"})
        env = bytecode_env(env, Path(home) / "pycache")
        base, warm, cold = [], [], []
        try:
            timed(run, env)  # first start: page cache, migrations
            for _ in range(runs):
                base.append(timed(true, env))
                warm.append(timed(run, env))
            for _ in range(max(3, runs // 4)):
                subprocess.run(stop, env=env, capture_output=True, check=True)
                base.append(timed(true, env))
                cold.append(timed(run, env))
        finally:
            subprocess.run(stop, env=env, capture_output=True)
    b = statistics.median(base)
    return {
        "runs": runs,
        "cold_runs": max(3, runs // 4),
        "true_ms": round(b, 1),
        "warm_ms": round(statistics.median(warm), 1),
        "warm_added_ms": round(statistics.median(warm) - b, 1),
        "cold_ms": round(statistics.median(cold), 1),
        "cold_added_ms": round(statistics.median(cold) - b, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="3 runs: checks the script still works")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = measure(3 if args.quick else args.runs)
    if args.json:
        print(json.dumps(res))
        return 0
    verdict = "PASS" if res["warm_added_ms"] <= TARGET_WARM_MS else "MISS"
    print(
        f"| | median ms | added vs `true` |\n|---|---|---|\n| `true` | {res['true_ms']} | |\n"
        f"| `agentmeter run -- true`, warm daemon | {res['warm_ms']} | +{res['warm_added_ms']} ms "
        f"(target ≤ 150: {verdict}) |\n| `agentmeter run -- true`, cold (starts the daemon) | {res['cold_ms']} | "
        f"+{res['cold_added_ms']} ms |"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
