"""Time to first byte at one stream, A/B with many samples: direct, a bare aiohttp relay, this tree's daemon and
(optionally) another tree's, each sent a burst of back-to-back streamed requests in turn, the order rotated
every round. Short streams (20 events 1 ms apart by default) give ~10× the samples of `run.py --levels 1` in
the same time, and the back-to-back bursts keep what happens between two requests of one agent (the previous
row's commit, the next body's admission) in every sample.

    python benchmarks/ttfb_ab.py --baseline /path/to/other/worktree/src --seconds 60

Prints added TTFB p50/p90 over direct per contender with n and the load average; exits 1 if any request failed
or a daemon's ledger lacks an `ok` row for a request it relayed (then the numbers measured the wrong work).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_load as bl  # noqa: E402
import proxy_overhead as po  # noqa: E402
import run as suite  # noqa: E402


async def measure(srv: suite.Servers, seconds: float, burst: int, events: int) -> tuple[dict, dict]:
    targets = srv.targets()
    work = bl.Workload(pace_ms=1.0, events=(events, events))
    bl.prebuild(work)
    stats = {t.name: bl.Stats() for t in targets}
    sent = dict.fromkeys(stats, 0)
    rng = random.Random(2026)
    async with bl.new_session() as http:
        for t in targets:  # connections, imports, caches, the price table, the ledger writer
            sent[t.name] += await bl.closed_loop(http, t, work, 16, 2.0, 999, None)
        deadline = time.perf_counter() + seconds
        j = 0
        while time.perf_counter() < deadline:
            k = j % len(targets)
            j += 1
            for t in targets[k:] + targets[:k]:
                for _ in range(burst):
                    sent[t.name] += await bl.one(http, t, work.spec(rng), stats[t.name])
    return stats, sent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", metavar="SRC", help="another source tree's src/ (e.g. a worktree of main)")
    ap.add_argument("--seconds", type=float, default=60.0, help="measuring time after warm-up (default 60)")
    ap.add_argument("--burst", type=int, default=4, help="back-to-back requests per contender per turn (default 4)")
    ap.add_argument("--events", type=int, default=20, help="events per stream, 1 ms apart (default 20)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentmeter-ttfb-") as tmp:
        procs = po.Procs(Path(tmp))
        try:
            srv = suite.Servers(
                procs, Path(tmp), False, True, str(Path(args.baseline).resolve()) if args.baseline else None
            )
            srv.start()
            stats, sent = asyncio.run(measure(srv, args.seconds, args.burst, args.events))
            ledgers = {"agentmeter": po.ledger_statuses(srv.home)}
            if srv.base_port:
                ledgers[suite.BASELINE] = po.ledger_statuses(Path(tmp) / "home-baseline")
        finally:
            procs.stop_all()
    problems = [e for st in stats.values() for e in st.errors[:3]]
    for name, statuses in ledgers.items():
        if statuses.get("ok", 0) < sent[name] or set(statuses) - {"ok"}:
            problems.append(f"{name}: {sent[name]} requests relayed, its ledger has {statuses}")
    base = bl.pct(stats["direct"].ttfb, 50)
    base90 = bl.pct(stats["direct"].ttfb, 90)
    print(
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{args.events} events per stream, bursts of {args.burst}"
    )
    print("| contender | n | TTFB p50 | added p50 | added p90 |\n|---|---|---|---|---|")
    for name, st in stats.items():
        p50, p90 = bl.pct(st.ttfb, 50), bl.pct(st.ttfb, 90)
        print(f"| {name} | {st.n} | {p50:.3f} | {p50 - base:+.3f} | {p90 - base90:+.3f} |")
    if problems:
        print("WRONG WORK:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
