"""SIGKILL the daemon at random moments under N-way streaming load; then check that nothing was lost.

    python tests/chaos/crash_trials.py --trials 50 --streams 16 [--seed 1] [--json out.json]

An `agentmeter run -- python load_agent.py` session drives N streaming clients (Anthropic Messages,
OpenAI Responses, Chat Completions; key mode) through the daemon to the fake provider. Each trial waits a
random 0–1.5 s after the daemon is healthy, SIGKILLs it, and times how long the wrapper takes to bring a
new one up on the same port. Afterwards every response a client received completely must have its `ok`
row, every interrupted one a row (`partial`, or `ok` when the kill fell between the commit and the relay
of the terminal event), all in the one session, which ends with the agent's exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from chaos.harness import Run, start_fake, stop_daemon, user_env, verify, wait_healthy
else:
    from .harness import Run, start_fake, stop_daemon, user_env, verify, wait_healthy


def crash_trials(workdir: Path, trials: int, streams: int, seed: int = 1, max_delay: float = 1.5) -> dict:
    home = workdir / "home"
    fake = start_fake(workdir, pace_ms=10)
    fake.configure(deltas=20)  # ~30 events 10 ms apart: a stream lasts ~0.3 s, so kills land mid-stream
    env = user_env(home, fake)
    run = Run(home, env, workdir / "attempts.jsonl", workdir / "stop")
    rnd = random.Random(seed)
    kills, restarts = [], []
    t0 = time.monotonic()
    try:
        run.start(streams)
        h = wait_healthy(home)
        port = None
        for _ in range(trials):
            h = wait_healthy(home)
            port = port or h["port"]
            assert h["port"] == port, f"daemon came back on {h['port']}, agents use {port}"
            time.sleep(rnd.uniform(0, max_delay))
            before = run.completed()
            os.kill(h["pid"], signal.SIGKILL)
            killed = time.monotonic()
            h2 = wait_healthy(home, not_pid=h["pid"])
            restarts.append(time.monotonic() - killed)
            kills.append({"pid": h["pid"], "completed_before": before, "restart_s": round(restarts[-1], 3)})
            if run.proc.poll() is not None:
                raise RuntimeError(f"agentmeter run exited early: {run.proc.returncode}")
            del h2
        time.sleep(1.0)  # let the last retries complete on the final daemon
        final = wait_healthy(home)
        code = run.finish()
    finally:
        if run.proc and run.proc.poll() is None:
            run.proc.kill()
        stop_daemon(home, env)
        fake.stop()
    v = verify(home / "ledger.db", run.log)
    return {
        "trials": trials,
        "streams": streams,
        "seed": seed,
        "duration_s": round(time.monotonic() - t0, 1),
        "run_exit_code": code,
        "agent_counts": run.stdout.strip().splitlines()[-1] if run.stdout.strip() else None,
        "restart_s": {
            "median": round(statistics.median(restarts), 3) if restarts else None,
            "max": round(max(restarts), 3) if restarts else None,
        },
        "recovered_partial_last_start": final.get("recovered_partial"),
        **v.as_dict(),
        "lost_examples": (v.complete_without_row + v.interrupted_without_row)[:5],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentmeter-chaos-") as d:
        report = crash_trials(Path(d), args.trials, args.streams, args.seed)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    ok = report["rows_lost"] == 0 and report["duplicate_rows"] == 0 and report["sessions"] == 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
