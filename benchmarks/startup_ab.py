"""The start-up of the everyday commands, this tree against another, interleaved in one run.

    python benchmarks/startup_ab.py --baseline /path/to/other/checkout/src [--runs 30] [--rows 200000] [--json]

What a developer waits for on every prompt, statusline refresh, `status` and agent launch: `status --json`,
`report --by day --since 30d`, `prompt`, `statusline` (Claude Code's JSON on stdin), `shell-init bash` (what
the hook's eval runs), `run --quiet -- true` with the daemon warm. Each tree gets its own AGENTMETER_HOME,
whose ledger is built by that tree's own `benchmarks/status_scale.py` (same seed, same rows), and its own
daemon. Runs are interleaved (this tree, the other, alternating which goes first) with bytecode cached, so
machine drift hits both alike. Every command must exit 0 and the two `status --json` must agree on the
month's spend, or the script fails instead of printing a comparison of broken runs.
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

HERE = Path(__file__).resolve().parent
STATUSLINE_INPUT = json.dumps({"session_id": "bench", "model": {"display_name": "Sonnet"}, "workspace": {}})


def commands(true: str) -> dict[str, tuple[list[str], str | None]]:
    """name → (argv after `python -m agentmeter`, stdin)."""
    return {
        "status --json": (["status", "--json"], None),
        "report --by day --since 30d": (["report", "--by", "day", "--since", "30d", "--format", "json"], None),
        "prompt": (["prompt"], None),
        "statusline": (["statusline"], STATUSLINE_INPUT),
        "shell-init bash": (["shell-init", "bash"], None),
        "run -- true (warm)": (["run", "--quiet", "--", true], None),
    }


class Tree:
    def __init__(self, name: str, src: Path, tmp: Path, rows: int, days: int) -> None:
        self.name, self.src = name, src
        self.home = tmp / name / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_") and k != "PYTHONPATH"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            {
                "AGENTMETER_HOME": str(self.home),
                "AGENTMETER_PORT": "0",
                "PYTHONPATH": str(src),
                "PYTHONPYCACHEPREFIX": str(tmp / name / "pycache"),
                "NO_COLOR": "1",
            }
        )
        self.env = env
        bench = src.parent / "benchmarks"
        build = (
            "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import status_scale; "
            "status_scale.build(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))"
        )
        subprocess.run(
            [sys.executable, "-c", build, str(bench), str(self.home), str(rows), str(days)], env=env, check=True
        )

    def argv(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "agentmeter", *args]

    def timed(self, args: list[str], stdin: str | None) -> float:
        t0 = time.perf_counter()
        r = subprocess.run(self.argv(args), env=self.env, input=stdin, capture_output=True, text=True)
        ms = (time.perf_counter() - t0) * 1000
        if r.returncode != 0:
            raise SystemExit(f"{self.name}: agentmeter {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
        return ms

    def month_spend(self) -> float:
        r = subprocess.run(self.argv(["status", "--json"]), env=self.env, capture_output=True, text=True, check=True)
        return json.loads(r.stdout)["windows"][2]["spent_usd"]

    def stop(self) -> None:
        subprocess.run(self.argv(["proxy", "stop"]), env=self.env, capture_output=True)


def measure(baseline: Path, runs: int, rows: int, days: int, only: str | None = None) -> dict:
    true = "/bin/true" if os.path.exists("/bin/true") else "true"
    cmds = {k: v for k, v in commands(true).items() if only is None or k.startswith(only)}
    if not cmds:
        raise SystemExit(f"--only {only!r} names no command (they are: {', '.join(commands(true))})")
    with tempfile.TemporaryDirectory(prefix="agentmeter-startup-ab-") as tmp:
        trees = [
            Tree("this", HERE.parent / "src", Path(tmp), rows, days),
            Tree("baseline", baseline, Path(tmp), rows, days),
        ]
        try:
            spends = {t.name: t.month_spend() for t in trees}
            if abs(spends["this"] - spends["baseline"]) > 1e-6:
                raise SystemExit(f"the two ledgers disagree on the month's spend: {spends}; not comparable")
            samples = {t.name: {c: [] for c in ["python -c pass", *cmds]} for t in trees}
            for t in trees:  # warm the page and bytecode caches; start each tree's daemon
                for args, stdin in cmds.values():
                    t.timed(args, stdin)
            for i in range(runs):
                order = trees if i % 2 == 0 else trees[::-1]
                for name, (args, stdin) in cmds.items():
                    for t in order:
                        samples[t.name][name].append(t.timed(args, stdin))
                for t in order:
                    t0 = time.perf_counter()
                    subprocess.run([sys.executable, "-c", "pass"], env=t.env, check=True)
                    samples[t.name]["python -c pass"].append((time.perf_counter() - t0) * 1000)
        finally:
            for t in trees:
                t.stop()
    out = {"runs": runs, "rows": rows, "month_spend_usd": spends["this"], "commands": {}}
    for name in samples["this"]:
        a, b = statistics.median(samples["this"][name]), statistics.median(samples["baseline"][name])
        out["commands"][name] = {"this_ms": round(a, 1), "baseline_ms": round(b, 1), "ratio": round(a / b, 3)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True, help="the other tree's src/ directory")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--rows", type=int, default=200_000, help="ledger rows in each home")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--only", help="time only the commands whose name starts with this (e.g. run, status)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not (a.baseline / "agentmeter" / "__init__.py").exists():
        ap.error(f"--baseline {a.baseline}: no agentmeter package there (give the checkout's src/ directory)")
    res = measure(a.baseline.resolve(), a.runs, a.rows, a.days, a.only)
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    load = os.getloadavg()[0]
    print(f"{res['runs']} interleaved runs each, ledgers of {res['rows']:,} rows, load average {load:.2f}")
    print(f"{'command':30} {'baseline ms':>12} {'this ms':>10} {'this ÷ baseline':>16}")
    for name, r in res["commands"].items():
        print(f"{name:30} {r['baseline_ms']:>12.1f} {r['this_ms']:>10.1f} {r['ratio']:>16.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
