"""The team collector at company scale (issue 20 item 2), on SQLite and on PostgreSQL.

    python benchmarks/collector_scale.py [--engine sqlite|postgresql|both] [--quick] [--devs N] [--days N]
                                         [--pg-url postgresql://…]

Generates 2,000 developers × 60 days × 2 agents × 2 models × 2 repos (960,000 rollup rows, 120,000 sessions)
straight into a fresh collector database through the real migrations (COPY on PostgreSQL), builds the
aggregates the way migration c018 does, then runs `agentmeter collector serve` on it as a separate process
and measures through HTTP:

- the dashboard of the last month, and every report (`/v1/report?by=…`) over that month; the peer is the
  same month grouped straight from the rollups (what the collector did before: one scan per figure, the
  dashboard six of them), timed in the same run;
- the FOCUS export over HTTP for one week and for the whole month, each on a freshly started server: the
  server's peak RSS (VmHWM) — flat means the month costs about what the week costs;
- 200 pushes at once from 200 developers, alone and while dashboards are being read: every answer must be
  200 and the collector's totals must grow by exactly what was pushed, or the run fails.

Without --pg-url a throw-away cluster is started from /usr/lib/postgresql/*/bin (tests/pg_cluster.py).
Targets: dashboard ≤ 1 s, reports ≤ 0.5 s, export memory flat, 200 concurrent pushes without errors.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from agentmeter.collector import aggregates, engine  # noqa: E402
from agentmeter.collector.store import REPORT_BY, ROLLUP_COLUMNS, SESSION_COLUMNS, open_store  # noqa: E402
from agentmeter.ledger.schema import TOKEN_COLUMNS  # noqa: E402

LAST_DAY = date(2026, 11, 30)
AGENTS = [
    ("claude", "anthropic", ("claude-sonnet-4-5", "claude-opus-4-8")),
    ("codex", "openai", ("gpt-5.1-codex", "gpt-5.1-codex-mini")),
]
ROLLUP_COLS, SESSION_COLS = ROLLUP_COLUMNS, SESSION_COLUMNS  # what a push writes


def key(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def tag_split(cost: float, inp: int, out: int) -> str:
    """A fifth of the developers ran a share of their sessions with `--tag ticket=…` (the export splits by it)."""
    part = {
        "tags": {"ticket": f"ABC-{inp % 7}"},
        "requests": 1,
        **dict.fromkeys(TOKEN_COLUMNS, 0),
        "input_tokens": inp // 2,
        "output_tokens": out // 2,
        "cost_usd": round(cost / 2, 6),
        "unpriced_requests": 0,
        "cost_by_type": {"input": round(cost * 0.2, 6), "output": round(cost * 0.3, 6)},
    }
    return json.dumps([part], sort_keys=True)


def generate(devs: int, days: int, seed: int = 20):
    """(rollup rows, session rows) as tuples in column order, one developer at a time."""
    rng = random.Random(seed)
    day_names = [(LAST_DAY - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    for d in range(devs):
        dev = f"dev{d:05d}@example.com"
        team, cc = f"team-{d % 40:02d}", f"CC-{d % 10}"
        repos = tuple(f"github.com/acme/repo{r:03d}" for r in rng.sample(range(300), 2))
        devices = [f"device-{d:05d}-a"] + ([f"device-{d:05d}-b"] if d % 3 == 0 else [])
        sub = d % 4 == 0
        rollups, sessions = [], []
        for i, day in enumerate(day_names):
            device = devices[i % len(devices)]
            total = 0.0
            for agent, provider, models in AGENTS:
                for model in models:
                    for repo in repos:
                        inp, out = rng.randint(1_000, 400_000), rng.randint(100, 40_000)
                        cost = round(inp * 3e-6 + out * 15e-6, 6)
                        total += cost
                        tokens = {
                            "input_tokens": inp,
                            "cache_read_tokens": inp * 4,
                            "cache_write_tokens": inp // 10,
                            "cache_write_5m_tokens": inp // 10,
                            "cache_write_1h_tokens": 0,
                            "output_tokens": out,
                            "reasoning_tokens": out // 5,
                            "web_search_requests": 0,
                        }
                        split = json.dumps({"input": round(cost * 0.4, 6), "output": round(cost * 0.6, 6)})
                        rollups.append(
                            (
                                dev,
                                key(dev, day, agent, model, repo),
                                device,
                                team,
                                cc,
                                day,
                                agent,
                                provider,
                                model,
                                repo,
                                int(sub),
                                rng.randint(1, 80),
                                *(tokens[c] for c in TOKEN_COLUMNS),
                                cost,
                                0,
                                split,
                                tag_split(cost, inp, out) if d % 5 == 0 and repo == repos[0] else None,
                                1,
                            )
                        )
            sessions.append(
                (
                    dev,
                    key(dev, day, "session"),
                    device,
                    f"s-{d}-{i}",
                    team,
                    cc,
                    "claude",
                    repos[0],
                    "main",
                    day,
                    1,
                    2,
                    10,
                    *(0 for _ in TOKEN_COLUMNS),
                    round(total, 6),
                    0,
                    "[]",
                    1,
                )
            )
        yield rollups, sessions


def load(target, devs: int, days: int) -> tuple[float, int]:
    """Fill a fresh collector database; returns (seconds, rollup rows)."""
    t0 = time.perf_counter()
    store = open_store(target)
    db, n = store.db, 0
    try:
        if db.postgres:
            with db.pool.connection() as conn, conn.cursor() as cur:
                with cur.copy(f"COPY rollups ({', '.join(ROLLUP_COLS)}) FROM STDIN") as cp_r:
                    sessions = []
                    for rollups, srows in generate(devs, days):
                        for row in rollups:
                            cp_r.write_row(row)
                        n += len(rollups)
                        sessions.extend(srows)
                with cur.copy(f"COPY sessions ({', '.join(SESSION_COLS)}) FROM STDIN") as cp_s:
                    for row in sessions:
                        cp_s.write_row(row)
        else:
            rq = f"INSERT INTO rollups ({', '.join(ROLLUP_COLS)}) VALUES ({', '.join('?' * len(ROLLUP_COLS))})"
            sq = f"INSERT INTO sessions ({', '.join(SESSION_COLS)}) VALUES ({', '.join('?' * len(SESSION_COLS))})"
            batch_r, batch_s = [], []
            for rollups, srows in generate(devs, days):
                batch_r.extend(rollups)
                batch_s.extend(srows)
                if len(batch_r) >= 50_000:
                    with db.transaction():
                        db.executemany(rq, batch_r)
                        db.executemany(sq, batch_s)
                    n += len(batch_r)
                    batch_r, batch_s = [], []
            with db.transaction():
                db.executemany(rq, batch_r)
                db.executemany(sq, batch_s)
            n += len(batch_r)
        aggregates.rebuild(db)  # what migration c018 does with the rows already there
        db.execute("ANALYZE")
    finally:
        store.close()
    return time.perf_counter() - t0, n


# -- the old way, for the peer column ----------------------------------------------------------------------


def raw_report(db: engine.Database, col: str | None, since: str, until: str) -> None:
    sums = ", ".join(f"COALESCE(SUM({c}), 0)" for c in (*TOKEN_COLUMNS, "requests", "cost_usd", "unpriced_requests"))
    db.execute(
        f"SELECT {col + ', ' if col else ''}{sums}, COUNT(DISTINCT developer) FROM rollups "
        f"WHERE day >= ? AND day <= ? {'GROUP BY ' + col if col else ''}",
        (since, until),
    ).fetchall()


def raw_dashboard(db: engine.Database, since: str, until: str) -> None:
    """The six scans of the rollups the dashboard made before (without its per-developer cap lookups)."""
    raw_report(db, "day", since, until)
    raw_report(db, "developer", since, until)
    db.execute(
        "SELECT team, developer, cost_center, SUM(requests), SUM(input_tokens + output_tokens), "
        "SUM(CASE WHEN subscription = 0 THEN cost_usd ELSE 0 END), COUNT(DISTINCT device_id) FROM rollups "
        "WHERE day >= ? AND day <= ? GROUP BY team, developer, cost_center",
        (since, until),
    ).fetchall()
    raw_report(db, "agent", since, until)
    raw_report(db, "repo", since, until)
    raw_report(db, None, since, until)


# -- the served collector ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, target) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = tempfile.mkdtemp(prefix="agentmeter-bench-home-")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentmeter",
                "collector",
                "serve",
                "--db",
                str(target),
                "--port",
                str(self.port),
                "--rate",
                "1000000",
            ],
            env={**os.environ, "AGENTMETER_HOME": self.home},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/v1/health", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("FAIL: the collector did not start") from None
                time.sleep(0.2)
        raise SystemExit("FAIL: the collector did not answer within 120 s")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.home, ignore_errors=True)


def get(url: str, token: str) -> tuple[int, int]:
    """(status, bytes) with the body read to the end in 64 KiB pieces."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    n = 0
    with urllib.request.urlopen(req, timeout=600) as r:
        while chunk := r.read(65536):
            n += len(chunk)
        return r.status, n


def timed(fn, runs: int = 3) -> float:
    """The best of `runs` (the machine is shared: the best is the least disturbed)."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


async def pushes(
    url: str, tokens: list[str], day: str, with_reads: str | None = None, admin: str | None = None
) -> dict:
    import aiohttp

    async def one(session, i: int, token: str):
        items = [
            {
                "key": key("bench", day, i, j),
                "day": day,
                "agent": "claude",
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "repo": f"github.com/acme/p{j}",
                "subscription": False,
                "requests": 3,
                "input_tokens": 1000,
                "output_tokens": 100,
                "cost_usd": 0.01,
                "cost_by_type": {"input": 0.004, "output": 0.006},
            }
            for j in range(8)
        ]
        body = {"schema": "agentmeter.push/1", "device_id": f"device-bench-{i:04d}", "rollups": items}
        t0 = time.perf_counter()
        try:
            async with session.post(f"{url}/v1/push", json=body, headers={"Authorization": f"Bearer {token}"}) as r:
                await r.read()
                return r.status, time.perf_counter() - t0
        except Exception as exc:  # counted as an error, named below
            return f"{type(exc).__name__}: {exc}", time.perf_counter() - t0

    async def reads(session):
        n = 0
        while not done.is_set():
            async with session.get(f"{url}{with_reads}", headers={"Authorization": f"Bearer {admin}"}) as r:
                await r.read()
                n += 1
        return n

    done = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        reader = asyncio.ensure_future(reads(session)) if with_reads else None  # noqa: TID251 (referenced and awaited here)
        if reader:
            await asyncio.sleep(0.5)  # the reads are under way when the pushes arrive
        t0 = time.perf_counter()
        got = await asyncio.gather(*(one(session, i, t) for i, t in enumerate(tokens)))
        wall = time.perf_counter() - t0
        done.set()
        n_reads = await reader if reader else 0
    lat = sorted(t for _s, t in got)
    errors = [s for s, _t in got if s != 200]
    return {
        "n": len(got),
        "errors": errors,
        "wall_s": wall,
        "p50_s": statistics.median(lat),
        "p99_s": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "reads_done": n_reads,
    }


def totals(target) -> dict:
    store = open_store(target)
    try:
        return store.totals()
    finally:
        store.close()


def run_engine(name: str, target, devs: int, days: int) -> dict:
    out: dict = {"engine": name}
    secs, n = load(target, devs, days)
    out.update(rows=n, load_s=secs, devs=devs)
    month_first = LAST_DAY.replace(day=1)
    since, until = month_first.isoformat(), LAST_DAY.isoformat()
    store = open_store(target)
    try:
        admin = store.add_token("lead@example.com", None, True, 1)[1]
        push_tokens = [
            store.add_token(f"pusher{i:03d}@example.com", f"team-{i % 40:02d}", False, 1)[1] for i in range(200)
        ]
        out["raw_dashboard_s"] = timed(lambda: raw_dashboard(store.db, since, until))
        out["raw_report_s"] = timed(lambda: raw_report(store.db, "developer", since, until))
    finally:
        store.close()

    served = Served(target)
    try:
        month = LAST_DAY.strftime("%Y-%m")
        status, size = get(f"{served.url}/dashboard?month={month}", admin)
        assert status == 200 and size > 10_000, (status, size)
        out["dashboard_s"] = timed(lambda: get(f"{served.url}/dashboard?month={month}", admin))
        out["reports_s"] = {
            by: timed(lambda by=by: get(f"{served.url}/v1/report?by={by}&since={since}&until={until}", admin))
            for by in REPORT_BY
        }
        before = totals(target)
        alone = asyncio.run(pushes(served.url, push_tokens, "2026-12-01"))
        busy = asyncio.run(pushes(served.url, push_tokens, "2026-12-02", f"/dashboard?month={month}", admin))
        after = totals(target)
        out["pushes_alone"], out["pushes_with_reads"] = alone, busy
        out["pushed_requests_ok"] = after["requests"] - before["requests"] == 2 * 200 * 8 * 3
    finally:
        served.stop()

    return out


def run_export(out: dict, target, since: str, week: str, until: str) -> None:
    """The FOCUS export over HTTP, one week and one month, each on a freshly started server."""
    store = open_store(target)
    try:
        admin = store.add_token("finance@example.com", None, True, 1)[1]
    finally:
        store.close()
    for label, first in (("week", week), ("month", since)):
        served = Served(target)
        try:
            idle = served.peak_rss_mb()
            t0 = time.perf_counter()
            status, size = get(f"{served.url}/v1/export/focus?since={first}&until={until}", admin)
            out[f"export_{label}"] = {
                "status": status,
                "mb": size / 1e6,
                "s": time.perf_counter() - t0,
                "idle_rss_mb": idle,
                "peak_rss_mb": served.peak_rss_mb(),
            }
        finally:
            served.stop()


def report(r: dict) -> list[str]:
    worst_by, worst = max(r["reports_s"].items(), key=lambda kv: kv[1])
    wk, mo = r["export_week"], r["export_month"]
    lines = [
        f"## {r['engine']}: {r['rows']:,} rollup rows (loaded in {r['load_s']:.0f} s)",
        "",
        "| figure | time | peer (grouped from the rollups, as before) | ratio | target |",
        "|---|---|---|---|---|",
        f"| dashboard, one month | {r['dashboard_s'] * 1000:,.0f} ms | {r['raw_dashboard_s'] * 1000:,.0f} ms "
        f"(its six scans, SQL only) | {r['raw_dashboard_s'] / r['dashboard_s']:.1f}× faster | ≤ 1,000 ms |",
        f"| slowest report (by {worst_by}) | {worst * 1000:,.0f} ms | {r['raw_report_s'] * 1000:,.0f} ms (by "
        f"developer, SQL only) | {r['raw_report_s'] / worst:.1f}× | ≤ 500 ms |",
        "",
        "Reports over the month (HTTP, best of 3): "
        + ", ".join(f"{k} {v * 1000:,.0f} ms" for k, v in r["reports_s"].items()),
        "",
        f"| FOCUS export over HTTP ({r.get('export_devs', r['devs']):,} developers) | body | time | "
        "server RSS idle | server peak RSS |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {e['mb']:,.0f} MB | {e['s']:.1f} s | {e['idle_rss_mb']:.0f} MB | {e['peak_rss_mb']:.0f} MB |"
            for label, e in (("one week", wk), ("one month", mo))
        ),
        f"| month ÷ week | {mo['mb'] / wk['mb']:.1f}× | | | **{mo['peak_rss_mb'] / wk['peak_rss_mb']:.2f}×** |",
        "",
        "| 200 concurrent pushes (8 rollups each) | errors | wall | p50 | p99 | dashboards read meanwhile |",
        "|---|---|---|---|---|---|",
    ]
    for label, p in (("alone", r["pushes_alone"]), ("while dashboards are read", r["pushes_with_reads"])):
        lines.append(
            f"| {label} | {len(p['errors'])} | {p['wall_s']:.2f} s | {p['p50_s'] * 1000:,.0f} ms | "
            f"{p['p99_s'] * 1000:,.0f} ms | {p['reads_done']} |"
        )
    return lines


_TEMP: list[str] = []


def fresh_target(engine_name: str, cluster):
    if engine_name == "sqlite":
        _TEMP.append(tempfile.mkdtemp(prefix="agentmeter-bench-"))
        return Path(_TEMP[-1]) / "team.db"
    return cluster.new_database()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="200 developers × 30 days, for iterating")
    ap.add_argument("--devs", type=int)
    ap.add_argument("--days", type=int)
    ap.add_argument("--pg-url", help="an empty PostgreSQL database to fill (default: a throw-away cluster)")
    ap.add_argument(
        "--export-devs",
        type=int,
        help="measure the FOCUS export on a database of this many developers "
        "(same days; default: 200 at full scale, where a month is ~2M FOCUS rows and Python maps each)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    devs = args.devs or (200 if args.quick else 2000)
    days = args.days or (30 if args.quick else 60)
    if args.export_devs is None:
        args.export_devs = min(devs, 200)
    if days < 30:
        raise SystemExit("--days must be at least 30 (the dashboard's month and the export's month need them)")
    results, cluster = [], None
    t0 = time.perf_counter()
    try:
        for name in ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]:
            if name == "postgresql" and args.pg_url:
                target = args.pg_url
            else:
                if name == "postgresql" and cluster is None:
                    from pg_cluster import PgCluster, pg_bin

                    if pg_bin() is None:
                        raise SystemExit("FAIL: no PostgreSQL binaries (/usr/lib/postgresql/*/bin); pass --pg-url")
                    cluster = PgCluster(pg_bin()).start()
                target = fresh_target(name, cluster)
            out = run_engine(name, target, devs, days)
            if args.export_devs and args.export_devs != devs:  # the export reads every row: a smaller team
                target = fresh_target(name, cluster)
                out["export_devs"] = args.export_devs
                load(target, args.export_devs, days)
            first = LAST_DAY.replace(day=1).isoformat()
            run_export(out, target, first, (LAST_DAY - timedelta(days=6)).isoformat(), LAST_DAY.isoformat())
            results.append(out)
            print("\n".join(report(out)) + "\n", flush=True)  # each engine as soon as it is done
    finally:
        if cluster is not None:
            cluster.stop()
        for d in _TEMP:
            shutil.rmtree(d, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    print(
        f"# Collector at scale: {devs:,} developers × {days} days × 2 agents × 2 models × 2 repos "
        f"({time.perf_counter() - t0:.0f} s; shared 2-CPU machine under other load)\n"
    )
    failed = [
        f"{r['engine']}: {len(p['errors'])} push(es) not 200: {p['errors'][:3]}"
        for r in results
        for p in (r["pushes_alone"], r["pushes_with_reads"])
        if p["errors"]
    ]
    failed += [
        f"{r['engine']}: the collector's totals did not grow by exactly what was pushed"
        for r in results
        if not r["pushed_requests_ok"]
    ]
    failed += [
        f"{r['engine']}: FOCUS export answered {r[k]['status']}"
        for r in results
        for k in ("export_week", "export_month")
        if r[k]["status"] != 200
    ]
    if failed:
        raise SystemExit("FAIL: " + "; ".join(failed))


if __name__ == "__main__":
    main()
