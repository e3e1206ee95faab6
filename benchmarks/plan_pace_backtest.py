"""Plan-window pace backtest: does the run-out band (early–late) hold when the window really runs out?

    python benchmarks/plan_pace_backtest.py            # full run (about a minute: 200 windows per scenario)
    python benchmarks/plan_pace_backtest.py --quick    # 15 windows: checks the script still works

Synthetic 5-hour windows, replayed reading by reading through `agentmeter.plan.pace.forecast` (the code
status and the proxy's alert use). A developer works in bursts: sessions of 10-60 minutes at a pace that
varies between sessions, idle gaps between them; each request adds a noisy step to the provider's
utilization, and a reading arrives with every response. Every quarter hour from the 30th minute on, the
forecast's band [early, late] ("late" open when it says the window lasts to the reset) is compared with
what happened: the time the window hit 100 %, or "lasted to the reset".

Scenarios: steady (one long session), bursty (sessions and gaps), accelerating (the pace doubles half way),
light (rarely runs out). Reported: share of forecasts whose band held the outcome (target ~80 %), the
verdict's accuracy (runs out / on track), and the median error of the P50 run-out time when it ran out.
"""

from __future__ import annotations

import argparse
import random
import statistics
from dataclasses import dataclass, field

from agentmeter.plan.pace import forecast
from agentmeter.plan.shares import Point

WINDOW_S = 5 * 3600
EVERY_S = 15 * 60  # one forecast per quarter hour of each window


def simulate(rng: random.Random, kind: str) -> list[tuple[float, float]]:
    """(seconds into the window, used %) readings until the window is full or resets."""
    t, used, out = 0.0, rng.uniform(0, 15), []
    pace = rng.uniform(15, 35)  # points an hour while working
    while t < WINDOW_S and used < 100:
        if kind == "steady":
            work, gap = WINDOW_S, 0.0
        elif kind == "light":
            pace = rng.uniform(4, 12)
            work, gap = rng.uniform(600, 1800), rng.uniform(600, 2400)
        else:
            work, gap = rng.uniform(600, 3600), rng.uniform(300, 1800)
        end = min(t + work, WINDOW_S)
        while t < end and used < 100:
            t += rng.uniform(10, 60)
            rate = pace * (2.0 if kind == "accelerating" and t > WINDOW_S / 2 else 1.0)
            used = min(100.0, used + rate / 3600 * rng.uniform(10, 60) * rng.lognormvariate(0, 0.5))
            out.append((t, used))
        t += gap
        if kind != "steady":
            pace = max(5.0, pace * rng.lognormvariate(0, 0.35))
    return out


@dataclass
class Tally:
    n: int = 0
    inside: int = 0
    verdict_right: int = 0
    p50_errors_min: list[float] = field(default_factory=list)


def run(kind: str, windows: int, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(windows):
        readings = simulate(rng, kind)
        full_at = next((t for t, u in readings if u >= 100), None)
        resets = WINDOW_S
        pts = [Point(int(t * 1000), u, resets) for t, u in readings]
        next_at = 1800.0
        for i, (t, u) in enumerate(readings):
            if t < next_at or u >= 100:
                continue
            next_at = t + EVERY_S
            p = forecast(pts[: i + 1], t, WINDOW_S)
            if p.verdict == "unknown":
                continue
            tally.n += 1
            early = p.early if p.early is not None else float("inf")
            late = p.late if p.late is not None else float("inf")
            outcome = full_at if full_at is not None else float("inf")
            tally.inside += early <= outcome <= late
            tally.verdict_right += (p.verdict == "runs_out") == (full_at is not None)
            if full_at is not None and p.runs_out_at is not None:
                tally.p50_errors_min.append(abs(p.runs_out_at - full_at) / 60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--first-seed",
        type=int,
        default=7,
        help="seed of the first scenario (default 7, the reported run; tune on others)",
    )
    ap.add_argument(
        "--windows", type=int, default=200, help="windows per scenario (60 left about ±5 points of sampling error)"
    )
    args = ap.parse_args()
    windows = 15 if args.quick else args.windows
    print("| scenario | forecasts | band held the outcome | verdict right | median P50 run-out error |")
    print("|---|---:|---:|---:|---:|")
    for k, kind in enumerate(("steady", "bursty", "accelerating", "light")):
        t = Tally()
        run(kind, windows, t, args.first_seed + k)
        err = f"{statistics.median(t.p50_errors_min):.0f} min" if t.p50_errors_min else "-"
        print(
            f"| {kind} | {t.n} | {100 * t.inside / max(t.n, 1):.1f} % | {100 * t.verdict_right / max(t.n, 1):.1f} % "
            f"| {err} |"
        )


if __name__ == "__main__":
    main()
