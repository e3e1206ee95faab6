"""agentmeter's benchmark suite: one entry point, one Markdown table, the issue's targets checked.

    python benchmarks/run.py                 # full run (about 10 minutes); writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick         # smoke run (< 60 s with --no-litellm); prints, writes nothing
    python benchmarks/run.py --no-litellm    # direct vs agentmeter only
    python benchmarks/run.py --floor         # also a bare aiohttp relay: the floor for any Python proxy here
    python benchmarks/run.py --json          # raw results as JSON instead of Markdown

What it measures, all on 127.0.0.1:

1. Streams. A local fake Anthropic provider (bench_fake.py) answers Claude Code-like requests (50–200 KB
   bodies) with streamed responses of 40–400 SSE events, one event per write, paced (default: each stream
   draws a gap of 1–3 ms between events). Three contenders reach it: direct, through agentmeter (the real
   daemon, `agentmeter proxy serve`, with a session, metering into its ledger) and through LiteLLM's proxy
   (a pinned release in its own venv, see bench_litellm.py). Closed-loop load at 1, 16 and 64 concurrent
   streams in time slices that alternate between contenders (ABC, BCA, CAB, …) so machine drift hits all
   alike; every contender gets the same sequence of request shapes. Measured: time to first byte and total
   time at p50/p99, inter-chunk gap at p99, requests per second, each proxy's CPU time per request.
2. Memory. The daemon's VmRSS (from /proc) at its peak during the 64-stream slices, then at rest every
   1,000 requests while agentmeter alone serves 10,000 more at 64 streams (growth = last − first).
3. Ledger ingest: rows/s through LedgerWriter in-process, with the daemon's pricing (bench_ingest.py).
4. `status` and `report --by day --since 30d` on a 1,000,000-row ledger (status_scale.py), and `run` launch
   overhead, warm and cold (launch_overhead.py).

The quick run keeps every step but shrinks it (seconds instead of minutes, a 600-request soak instead of
10,000, a 20,000-row ledger) and checks that the suite still works; its numbers are not the results.
The report says how much CPU other processes used during the stream slices: results from a busy machine
are not comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
import bench_ingest  # noqa: E402
import bench_litellm  # noqa: E402
import bench_load as bl  # noqa: E402
import launch_overhead  # noqa: E402
import proxy_overhead as po  # noqa: E402
import status_scale  # noqa: E402

HOST = "127.0.0.1"
LEVELS = (1, 16, 64)

# The targets (this 2-core machine).
T_ADDED_P50_MS = 1.0  # at 16 streams
T_ADDED_P99_MS = 5.0  # at 16 streams
T_VS_LITELLM = 5.0  # LiteLLM's added latency ÷ agentmeter's, p50 and p99
T_THROUGHPUT = 0.90  # agentmeter req/s ÷ direct at 64 streams
T_RSS_MB = 80.0  # at 64 streams
T_ADDED_P50_1_MS = 1.0  # issue 17: added TTFB p50 at one stream
T_RSS_17_MB = 60.0  # issue 17: the daemon's RSS after warm-up
T_GROWTH_MB = 2.0  # RSS after 10,000 requests − after 5,000 (both at rest)
T_STATUS_MS = 100.0  # status on 1M rows, wall time
T_LAUNCH_MS = 150.0  # run, warm, added over `true` (issue 3)
T_REPORT_MS = 50.0  # report beyond interpreter start (issue 5)
BASELINE = "agentmeter (baseline)"  # --baseline: the same daemon built from another source tree


@dataclass
class Plan:
    quick: bool
    warmup_s: float
    slices: dict  # concurrency -> number of slices per contender
    slice_s: dict  # concurrency -> seconds per slice
    soak_total: int  # requests the daemon has served when the soak ends
    checkpoint: int
    ingest_rows: int
    ledger_rows: int
    status_runs: int
    launch_runs: int
    pace_ms: float


def make_plan(args) -> Plan:
    if args.quick:
        return Plan(
            True, 0.7, {1: 1, 16: 1, 64: 1}, {1: 1.2, 16: 1.2, 64: 1.5}, 600, 200, 3_000, 20_000, 3, 2, args.pace_ms
        )
    return Plan(
        False,
        2.0,
        {1: 10, 16: 6, 64: 6},
        {1: 5.0, 16: 5.0, 64: 5.0},
        10_000,
        1_000,
        50_000,
        1_000_000,
        15,
        20,
        args.pace_ms,
    )


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def tree_rss_kb(pid: int) -> int | None:
    """RSS of a process and its children (LiteLLM may fork workers)."""
    total = bl.rss_kb(pid)
    if total is None:
        return None
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += bl.rss_kb(int(child)) or 0
    return total


# -- machine ------------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = float("nan")
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    os_name = platform.system()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    rev = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        r = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if r.returncode == 0:
            rev = r.stdout.strip()
            d = subprocess.run(
                ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "src"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if d.stdout.strip():
                rev += " + uncommitted changes in src/"
    from agentmeter import __version__

    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_gib, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "sqlite": sqlite3.sqlite_version,
        "agentmeter": __version__,
        "git": rev,
    }


# -- streams ------------------------------------------------------------------------------------------


class Servers:
    def __init__(
        self, procs: po.Procs, work: Path, want_litellm: bool, want_floor: bool = False, baseline: str | None = None
    ) -> None:
        self.procs, self.work = procs, work
        self.baseline = baseline  # another source tree's src/ (e.g. a worktree of main): its daemon as a contender
        self.base_port = self.base_pid = 0
        self.base_token = ""
        self.want_litellm = want_litellm
        self.want_floor = want_floor
        self.floor_port = self.floor_pid = self.fake_pid = 0
        self.fake_port = self.am_port = self.lt_port = 0
        self.am_pid = self.lt_pid = 0
        self.token = ""
        self.home = work / "home"
        self.litellm_note = "not run (--no-litellm)"
        self.litellm_ok = False

    def start(self) -> None:
        pf = self.work / "fake.port"
        p = self.procs.start(
            "fake", [sys.executable, str(HERE / "bench_fake.py"), "--port-file", str(pf)], po.child_env({})
        )
        self.fake_port = int(po.wait_for_file(pf, p, self.procs, "fake"))
        self.fake_pid = p.pid
        upstream = f"http://{HOST}:{self.fake_port}"
        if self.want_floor:
            ff = self.work / "floor.port"
            fp = self.procs.start(
                "floor", [sys.executable, str(HERE / "bench_floor.py"), str(ff)], po.child_env({"UPSTREAM": upstream})
            )
            self.floor_port = int(po.wait_for_file(ff, fp, self.procs, "floor"))
            self.floor_pid = fp.pid
        self.am_port = po.start_proxy(self.procs, self.home, upstream, None)
        self.am_pid = self.procs.procs[-1][1].pid
        self.token = po.open_session(self.home, self.am_port)
        if self.baseline:
            home = self.work / "home-baseline"
            self.base_port = po.start_proxy(
                self.procs, home, upstream, None, {"PYTHONPATH": self.baseline}, name="baseline"
            )
            self.base_pid = self.procs.procs[-1][1].pid
            self.base_token = po.open_session(home, self.base_port)
        if self.want_litellm:
            ok, note = bench_litellm.ensure_installed(log)
            self.litellm_note = note
            if ok:
                try:
                    self.lt_port = free_port()
                    lp = bench_litellm.start(self.procs, self.work, upstream, self.lt_port, po.child_env({}))
                    self.lt_pid = lp.pid
                    self.litellm_ok = True
                except RuntimeError as exc:
                    self.litellm_note = (
                        f"LiteLLM {bench_litellm.VERSION} installed but did not start: " + str(exc).splitlines()[0]
                    )
            if not self.litellm_ok:
                log(f"LiteLLM unavailable: {self.litellm_note}; measuring direct vs agentmeter only")

    def targets(self) -> list[bl.Target]:
        claude = {**bl.CLAUDE_HEADERS, "x-api-key": "sk-ant-bench-not-a-key"}
        out = [
            bl.Target("direct", f"http://{HOST}:{self.fake_port}/v1/messages?beta=true", claude),
            bl.Target(
                "agentmeter", f"http://{HOST}:{self.am_port}/s/{self.token}/anthropic/v1/messages?beta=true", claude
            ),
        ]
        if self.base_port:
            out.append(
                bl.Target(
                    BASELINE,
                    f"http://{HOST}:{self.base_port}/s/{self.base_token}/anthropic/v1/messages?beta=true",
                    claude,
                )
            )
        if self.floor_port:
            out.insert(
                1,
                bl.Target("bare relay", f"http://{HOST}:{self.floor_port}/s/x/anthropic/v1/messages?beta=true", claude),
            )
        if self.litellm_ok:
            lt = {**bl.CLAUDE_HEADERS, "Authorization": f"Bearer {bench_litellm.MASTER_KEY}"}
            out.append(bl.Target("LiteLLM", f"http://{HOST}:{self.lt_port}/v1/messages?beta=true", lt))
        return out

    def pid_of(self, name: str) -> int:
        return {
            "agentmeter": self.am_pid,
            "LiteLLM": self.lt_pid,
            "bare relay": self.floor_pid,
            BASELINE: self.base_pid,
        }.get(name, 0)

    def pids(self) -> list[int]:
        return [p for p in (self.fake_pid, self.am_pid, self.lt_pid, self.floor_pid, self.base_pid) if p]


class LevelMonitor:
    """While one concurrency level runs: each proxy's CPU time during its own slices, peak RSS, LiteLLM's
    sockets (any non-loopback peer is reported)."""

    def __init__(self, srv: Servers, targets: list[bl.Target]) -> None:
        self.srv = srv
        self.names = [t.name for t in targets]
        self.cpu = {n: 0.0 for n in self.names}
        self.marks: dict[str, float] = {}
        self.peak = {"agentmeter": 0, "LiteLLM": 0, BASELINE: 0}
        self.foreign: set[str] = set()
        self._stop = asyncio.Event()
        self._task: asyncio.Future | None = None

    def _mark(self) -> None:
        for n in self.names:
            pid = self.srv.pid_of(n)
            if pid:
                self.marks[n] = cpu_s(pid)

    async def between(self, name: str) -> None:
        """Called after each slice of `name`."""
        pid = self.srv.pid_of(name)
        if pid and name in self.marks:
            self.cpu[name] += cpu_s(pid) - self.marks[name]
        self._mark()

    async def _sample(self) -> None:
        srv = self.srv
        while not self._stop.is_set():
            self.peak["agentmeter"] = max(self.peak["agentmeter"], bl.rss_kb(srv.am_pid) or 0)
            if srv.base_pid:
                self.peak[BASELINE] = max(self.peak[BASELINE], bl.rss_kb(srv.base_pid) or 0)
            if srv.lt_pid:
                self.peak["LiteLLM"] = max(self.peak["LiteLLM"], tree_rss_kb(srv.lt_pid) or 0)
                self.foreign.update(bench_litellm.foreign_peers(srv.lt_pid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.2)

    def start(self) -> LevelMonitor:
        self._mark()
        self._task = asyncio.ensure_future(self._sample())  # noqa: TID251 (referenced and awaited here)
        return self

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


class Background:
    """CPU time used on this machine by processes that are not the suite's (other work disturbs the run)."""

    def __init__(self, pids) -> None:
        self.pids = pids
        self.t0 = time.monotonic()
        self.busy0 = self._busy()
        self.ours0 = self._ours()

    @staticmethod
    def _busy() -> float:
        """user + nice + system time of the whole machine (interrupt time, loopback TCP's included, is left
        out: processes are not charged for it either)."""
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2]) / os.sysconf("SC_CLK_TCK")

    def _ours(self) -> float:
        own = os.times()
        total = own.user + own.system
        for pid in self.pids():
            c = cpu_s(pid)
            if not math.isnan(c):
                total += c
        return total

    def cores(self) -> dict:
        wall = time.monotonic() - self.t0
        busy = self._busy() - self.busy0
        ours = self._ours() - self.ours0
        return {
            "wall_s": round(wall, 1),
            "busy_cores": round(busy / wall, 2),
            "suite_cores": round(ours / wall, 2),
            "other_cores": round(max(0.0, busy - ours) / wall, 2),
        }


async def run_streams(plan: Plan, srv: Servers, levels: tuple[int, ...] = LEVELS) -> dict:
    targets = srv.targets()
    work = bl.Workload(pace_ms=plan.pace_ms)
    bl.prebuild(work)
    out: dict = {"levels": {}, "memory": {}, "contenders": [t.name for t in targets]}
    am_done = 0
    foreign: set[str] = set()
    bg = Background(srv.pids)
    async with bl.new_session() as http:
        for t in targets:  # connections, imports, caches, the price table, the ledger writer
            n = await bl.closed_loop(http, t, work, 64, plan.warmup_s, 999, None)
            if t.name == "agentmeter":
                am_done += n
            log(f"warm-up {t.name}: {n} requests")
        out["memory"]["rss_after_warmup_mb"] = (bl.rss_kb(srv.am_pid) or 0) / 1024
        if srv.base_pid:
            out["memory"]["baseline_rss_after_warmup_mb"] = (bl.rss_kb(srv.base_pid) or 0) / 1024

        for conc in levels:
            mon = LevelMonitor(srv, targets).start()
            try:
                stats = await bl.interleaved(
                    http,
                    targets,
                    work,
                    conc,
                    plan.slices[conc],
                    plan.slice_s[conc],
                    seed=conc * 7919,
                    between=mon.between,
                    label=f"{conc} stream(s)",
                )
            finally:
                await mon.close()
            foreign |= mon.foreign
            level = {}
            for name, st in stats.items():
                s = st.summary()
                s["proxy_cpu_ms_per_req"] = mon.cpu[name] * 1000 / st.n if srv.pid_of(name) and st.n else None
                level[name] = s
            am_done += stats["agentmeter"].n
            out["levels"][str(conc)] = level
            if conc == 64:
                out["memory"]["rss_peak_64_mb"] = mon.peak["agentmeter"] / 1024
                out["memory"]["baseline_rss_peak_64_mb"] = mon.peak[BASELINE] / 1024 if srv.base_pid else None
                out["memory"]["litellm_rss_peak_64_mb"] = mon.peak["LiteLLM"] / 1024 if srv.lt_pid else None
        out["load"] = bg.cores()

        # Soak: agentmeter alone at 64 streams for plan.soak_total more requests; RSS at rest (no request in
        # flight) at the start and after every checkpoint.
        am = next(t for t in targets if t.name == "agentmeter")
        series: dict[str, float] = {str(am_done): (bl.rss_kb(srv.am_pid) or 0) / 1024}
        out["memory"]["soak_start"] = am_done
        soak_errors: list[str] = []
        end = am_done + plan.soak_total
        next_mark = am_done + plan.checkpoint
        seed = 5000
        t0 = time.perf_counter()
        while am_done < end:
            st = bl.Stats()
            n = await budgeted(http, am, work, 64, min(next_mark, end) - am_done, seed, st)
            seed += 1
            soak_errors += st.errors
            am_done += n
            if am_done >= next_mark or am_done >= end:
                series[str(am_done)] = (bl.rss_kb(srv.am_pid) or 0) / 1024
                log(f"  soak: {am_done} requests served, RSS {series[str(am_done)]:.1f} MB")
                next_mark += plan.checkpoint
            if n == 0 and st.errors:
                break
        out["memory"]["rss_at_rest_mb"] = series
        out["memory"]["soak_s"] = round(time.perf_counter() - t0, 1)
        out["memory"]["requests_served"] = am_done
        out["memory"]["soak_errors"] = soak_errors[:3]
        out["memory"]["soak_error_count"] = len(soak_errors)
    out["litellm_foreign_peers"] = sorted(foreign)
    return out


def fake_served(port: int) -> dict:
    with urllib.request.urlopen(f"http://{HOST}:{port}/_bench/stats", timeout=10) as resp:
        return json.loads(resp.read())


def wrong_work(s: dict) -> list[str]:
    """Why these numbers do not measure what they claim, if they do not: any contender's failed request (not a
    200 with every event, or an answer seen before), agentmeter answering without the provider (a refusal, a
    cache) or without metering (fewer `ok` rows than completed requests, or any other row)."""
    problems = []
    done: dict[str, int] = {}
    for conc, level in s["levels"].items():
        for name, x in level.items():
            done[name] = done.get(name, 0) + x["n"]
            if x["errors"]:
                problems.append(
                    f"{name} at {conc} stream(s): {x['errors']} failed requests (first: {'; '.join(x['first_errors'])})"
                )
    if s["memory"].get("soak_error_count"):
        problems.append(f"soak: {s['memory']['soak_error_count']} failed requests")
    served = s.get("fake_served", {})
    for name, n in done.items():
        got = served.get(f"by:{name}")
        if name != "LiteLLM" and (got is None or got < n):  # LiteLLM does not relay our header
            problems.append(f"{name}: {n} requests completed, the provider served {got}")
    ledger = s.get("ledger", {})
    if ledger.get("ok", 0) != s["am_completed"]:
        problems.append(f"agentmeter: {s['am_completed']} requests completed, {ledger.get('ok', 0)} `ok` rows")
    others = {k: v for k, v in ledger.items() if k != "ok"}
    if others:
        problems.append(f"agentmeter's ledger has rows that are not `ok`: {others}")
    if "baseline_ledger" in s:
        base = s["baseline_ledger"]
        if base.get("ok", 0) < done.get(BASELINE, 0) or set(base) - {"ok"}:
            problems.append(f"baseline: {done.get(BASELINE, 0)} requests completed, its ledger has {base}")
    return problems


async def budgeted(http, t: bl.Target, work: bl.Workload, conc: int, budget: int, seed: int, st: bl.Stats) -> int:
    """`conc` workers sending requests until `budget` have been started; returns how many succeeded."""
    started = 0
    done = 0

    async def worker(w: int) -> None:
        nonlocal started, done
        import random

        rng = random.Random(seed * 1000 + w)
        while started < budget:
            started += 1
            if await bl.one(http, t, work.spec(rng), st):
                done += 1

    await asyncio.gather(*(worker(w) for w in range(conc)))
    return done


# -- the report ---------------------------------------------------------------------------------------


def fmt(x, nd: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:+.{nd}f}" if sign else f"{x:,.{nd}f}"


def added(level: dict, name: str, key: str) -> float | None:
    if name not in level or "direct" not in level:
        return None
    return level[name][key] - level["direct"][key]


def vs_ratio(lt_added: float | None, am_added: float | None) -> float | None:
    """LiteLLM's added latency ÷ agentmeter's (∞ when agentmeter adds nothing measurable)."""
    if lt_added is None or am_added is None:
        return None
    if am_added <= 0.01:
        return math.inf if lt_added > 0 else None
    return lt_added / am_added


def verdicts(r: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, pass) for each of the issue's targets; pass None = not measured."""
    out: list[tuple[str, str, bool | None]] = []
    s = r.get("streams") or {}
    lv16 = (s.get("levels") or {}).get("16") or {}
    for key, label in (("ttfb", "TTFB"), ("excess", "total")):
        a50, a99 = added(lv16, "agentmeter", f"{key}_p50_ms"), added(lv16, "agentmeter", f"{key}_p99_ms")
        f50, f99 = added(lv16, "bare relay", f"{key}_p50_ms"), added(lv16, "bare relay", f"{key}_p99_ms")

        def floor(v):
            return f" (bare aiohttp relay: {fmt(v, sign=True)} ms)" if v is not None else ""

        out.append(
            (
                f"added {label} latency p50 ≤ {T_ADDED_P50_MS:g} ms at 16 streams",
                f"{fmt(a50, sign=True)} ms{floor(f50)}",
                None if a50 is None else a50 <= T_ADDED_P50_MS,
            )
        )
        out.append(
            (
                f"added {label} latency p99 ≤ {T_ADDED_P99_MS:g} ms at 16 streams",
                f"{fmt(a99, sign=True)} ms{floor(f99)}",
                None if a99 is None else a99 <= T_ADDED_P99_MS,
            )
        )
    for key, label in (("ttfb", "TTFB"), ("excess", "total")):
        for p in ("p50", "p99"):
            ratio = vs_ratio(added(lv16, "LiteLLM", f"{key}_{p}_ms"), added(lv16, "agentmeter", f"{key}_{p}_ms"))
            out.append(
                (
                    f"LiteLLM's added {label} {p} ≥ {T_VS_LITELLM:g}× agentmeter's (16 streams)",
                    f"{fmt(ratio, 1)}×" if ratio is not None else "LiteLLM not measured",
                    None if ratio is None else ratio >= T_VS_LITELLM,
                )
            )
    lv1 = (s.get("levels") or {}).get("1") or {}
    a1 = added(lv1, "agentmeter", "ttfb_p50_ms")
    if a1 is not None:
        out.append(
            (
                f"(issue 17) added TTFB p50 ≤ {T_ADDED_P50_1_MS:g} ms at 1 stream",
                f"{fmt(a1, sign=True)} ms",
                a1 <= T_ADDED_P50_1_MS,
            )
        )
    lv64 = (s.get("levels") or {}).get("64") or {}
    if "agentmeter" in lv64:
        tr = lv64["agentmeter"]["rps"] / lv64["direct"]["rps"]
        out.append((f"throughput ≥ {T_THROUGHPUT:.0%} of direct at 64 streams", f"{tr:.1%}", tr >= T_THROUGHPUT))
    m = s.get("memory") or {}
    if m.get("rss_peak_64_mb"):
        out.append(
            (
                f"daemon RSS ≤ {T_RSS_MB:g} MB at 64 streams",
                f"{m['rss_peak_64_mb']:.1f} MB",
                m["rss_peak_64_mb"] <= T_RSS_MB,
            )
        )
    if m.get("rss_after_warmup_mb"):
        out.append(
            (
                f"(issue 17) daemon RSS ≤ {T_RSS_17_MB:g} MB after warm-up",
                f"{m['rss_after_warmup_mb']:.1f} MB",
                m["rss_after_warmup_mb"] <= T_RSS_17_MB,
            )
        )
    g = growth(m)
    if g is not None:
        lo, hi, d = g
        out.append(
            (
                f"no RSS growth over {hi - lo:,} more requests at 64 streams (at rest, ≤ {T_GROWTH_MB:g} MB)",
                f"{d:+.1f} MB ({lo:,} → {hi:,} served)",
                d <= T_GROWTH_MB,
            )
        )
    st = r.get("status_report") or {}
    res = st.get("results") or {}
    if status_scale.STATUS in res:
        ms = res[status_scale.STATUS]["median_ms"]
        out.append((f"`status` ≤ {T_STATUS_MS:g} ms on {st['rows']:,} rows (wall)", f"{ms:.0f} ms", ms <= T_STATUS_MS))
    return out


def growth(m: dict) -> tuple[int, int, float] | None:
    """(requests at the soak's start, at its end, RSS end − start in MB)."""
    series = {int(k): v for k, v in (m.get("rss_at_rest_mb") or {}).items()}
    if len(series) < 2:
        return None
    lo, hi = min(series), max(series)
    return lo, hi, series[hi] - series[lo]


def markdown(r: dict, plan: Plan) -> str:
    mc = r["machine"]
    L: list[str] = []
    title = "agentmeter benchmarks" + (" (QUICK smoke run: not results)" if plan.quick else "")
    L += [f"# {title}", ""]
    L += [
        f"Machine: {mc['cpu']}, {mc['cpus']} CPUs, {mc['mem_gib']} GiB RAM, {mc['os']} (Linux {mc['kernel']}); "
        f"Python {mc['python']}, aiohttp {mc['aiohttp']}, SQLite {mc['sqlite']}; agentmeter {mc['agentmeter']} "
        f"(git {mc['git']}); {r.get('litellm_note', '')}.",
        f"Run {r['started']} with `{r.get('command', 'python benchmarks/run.py')}`, "
        f"{r['wall_s'] / 60:.1f} min. The load generator, the fake provider and the proxies share the CPUs.",
        "",
    ]
    s = r.get("streams")
    if s:
        names = s["contenders"]
        lv = s["levels"]
        load = s.get("load") or {}
        L += [
            "## Streams",
            "",
            f"Claude Code-like requests of 50–200 KB, streamed answers of 40–400 SSE events (8–64 bytes of text "
            f"each), one event per write, {plan.pace_ms * 0.5:g}–{plan.pace_ms * 1.5:g} ms apart (about 10× a "
            "real Claude stream's event rate); closed loop; contenders interleaved in "
            f"{max(plan.slice_s.values()):g} s slices. TTFB: request sent → first body byte. Gap: time between "
            "consecutive body chunks at the client. CPU: the proxy process's CPU time per request."
            + (
                f" During these slices the suite's processes used {load['suite_cores']:.2f} cores on average and "
                f"other processes {load['other_cores']:.2f}."
                if load
                else ""
            ),
            "",
            "| streams | contender | requests | TTFB p50 | TTFB p99 | total p50 | total p99 | beyond schedule p50 "
            "| beyond schedule p99 | gap p99 | req/s | proxy CPU/req | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for conc in LEVELS:
            level = lv.get(str(conc)) or {}
            for name in names:
                x = level.get(name)
                if not x:
                    continue
                L.append(
                    f"| {conc} | {name} | {x['n']:,} | {fmt(x['ttfb_p50_ms'])} | {fmt(x['ttfb_p99_ms'])} | "
                    f"{fmt(x['total_p50_ms'], 1)} | {fmt(x['total_p99_ms'], 1)} | {fmt(x['excess_p50_ms'])} | "
                    f"{fmt(x['excess_p99_ms'])} | {fmt(x['gap_p99_ms'])} | "
                    f"{fmt(x['rps'], 1)} | {fmt(x['proxy_cpu_ms_per_req'])} | {x['errors']} |"
                )
        L += [
            "",
            "All times in ms. *Beyond schedule*: total time minus the stream's own schedule (the fake writes "
            "event k at k × gap), so the mix of short and long streams does not move it. *Added* = the "
            "contender's percentile − direct's; added total latency is measured beyond schedule. Ratios ÷ "
            "direct are of the raw times.",
            "",
            "| streams | | TTFB p50 | TTFB p99 | total p50 | total p99 | gap p99 | req/s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        keys = ["ttfb_p50_ms", "ttfb_p99_ms", "excess_p50_ms", "excess_p99_ms", "gap_p99_ms"]
        rkeys = ["ttfb_p50_ms", "ttfb_p99_ms", "total_p50_ms", "total_p99_ms", "gap_p99_ms"]
        for conc in LEVELS:
            level = lv.get(str(conc)) or {}
            if "agentmeter" not in level:
                continue
            d, a = level["direct"], level["agentmeter"]
            for name in [n for n in names if n != "direct"]:
                x = level[name]
                L.append(
                    f"| {conc} | {name} added | "
                    + " | ".join(fmt(x[k] - d[k], sign=True) for k in keys)
                    + f" | {fmt(x['rps'] / d['rps'])}× direct |"
                )
            L.append(
                f"| {conc} | **agentmeter ÷ direct** | "
                + " | ".join(f"{fmt(a[k] / d[k])}×" for k in rkeys)
                + f" | {fmt(a['rps'] / d['rps'])}× |"
            )
            if "LiteLLM" in level:
                lt = level["LiteLLM"]
                L.append(
                    f"| {conc} | **LiteLLM ÷ agentmeter** (added) | "
                    + " | ".join(f"{fmt(vs_ratio(lt[k] - d[k], a[k] - d[k]), 1)}×" for k in keys)
                    + f" | {fmt(lt['rps'] / a['rps'])}× |"
                )
        errs = [e for level in lv.values() for x in level.values() for e in x["first_errors"]]
        if errs:
            L += ["", "First errors: " + "; ".join(errs[:4])]
        if s.get("litellm_foreign_peers"):
            L += ["", f"**LiteLLM opened non-loopback connections: {', '.join(s['litellm_foreign_peers'])}**"]
        m = s["memory"]
        series = m.get("rss_at_rest_mb") or {}
        L += [
            "",
            "## Daemon memory (VmRSS)",
            "",
            f"After warm-up {fmt(m.get('rss_after_warmup_mb'), 1)} MB; peak during the 64-stream slices "
            f"{fmt(m.get('rss_peak_64_mb'), 1)} MB"
            + (
                f" (LiteLLM's proxy, same slices: {fmt(m['litellm_rss_peak_64_mb'], 1)} MB)"
                if m.get("litellm_rss_peak_64_mb")
                else ""
            )
            + f". Then agentmeter alone at 64 streams for {plan.soak_total:,} more requests "
            f"({m.get('soak_s', 0):g} s), RSS read at rest (nothing in flight) every {plan.checkpoint:,}; "
            "the first column is where the comparison above left it:",
            "",
            "| requests served | " + " | ".join(f"{int(k):,}" for k in series) + " |",
            "|---|" + "---|" * len(series),
            "| RSS MB | " + " | ".join(f"{v:.1f}" for v in series.values()) + " |",
        ]
        if m.get("soak_error_count"):
            L += ["", f"Soak errors: {m['soak_error_count']} (first: {'; '.join(m['soak_errors'])})"]
        if "ledger_ok_rows" in s:
            L += [
                "",
                f"Ledger: {s['ledger_ok_rows']:,} `ok` rows for {s['am_completed']:,} proxied requests "
                "completed (warm-up included).",
            ]
    elif r.get("streams_error"):
        L += ["## Streams", "", f"FAILED: {r['streams_error']}"]
    ing = r.get("ingest")
    L += ["", "## Ledger ingest", ""]
    if ing:
        L += [
            f"{ing['rows']:,} `RequestRecord`s submitted at once to `LedgerWriter.record(rec, prepare=priced)` "
            f"(the daemon's path: priced on the writer thread, batched transactions, spend totals kept): "
            f"**{ing['rows_per_s']:,} rows/s** ({ing['stored']:,} stored, {ing['failed']} failed). One at a "
            f"time (what a stream's last event waits for): commit p50 {ing['single_commit_p50_ms']} ms, "
            f"p99 {ing['single_commit_p99_ms']} ms ({ing['single_n']} rows)."
        ]
    else:
        L += [f"FAILED: {r.get('ingest_error')}"]
    st = r.get("status_report")
    L += ["", "## `status` and `report` on a large ledger", ""]
    if st:
        L += [
            f"{st['rows']:,} requests over {st['days']} days ({st['ledger_mb']:.0f} MB), {st['runs']} cold runs "
            "each, interleaved with `python -c pass`:",
            "",
            "| command | median ms | p90 ms | beyond interpreter start |",
            "|---|---|---|---|",
        ]
        for k, v in st["results"].items():
            beyond = "" if k == "python -c pass" else f"+{v['beyond_interpreter_ms']}"
            L.append(f"| `{k}` | {v['median_ms']} | {v['p90_ms']} | {beyond} |")
    else:
        L += [f"FAILED: {r.get('status_report_error')}"]
    la = r.get("launch")
    L += ["", "## `agentmeter run` launch overhead", ""]
    if la:
        L += [
            "| | median ms | added over `true` |",
            "|---|---|---|",
            f"| `true` | {la['true_ms']} | |",
            f"| `agentmeter run -- true`, daemon running ({la['runs']} runs) | {la['warm_ms']} | "
            f"+{la['warm_added_ms']} |",
            f"| `agentmeter run -- true`, cold: starts the daemon ({la['cold_runs']} runs) | {la['cold_ms']} | "
            f"+{la['cold_added_ms']} |",
        ]
    else:
        L += [f"FAILED: {r.get('launch_error')}"]
    L += ["", "## Targets", "", "| target | measured | result |", "|---|---|---|"]
    for target, measured, ok in verdicts(r):
        L.append(f"| {target} | {measured} | {'–' if ok is None else 'PASS' if ok else '**MISS**'} |")
    if la:
        L.append(
            f"| (issue 3) `run` warm ≤ {T_LAUNCH_MS:g} ms added | +{la['warm_added_ms']} ms | "
            f"{'PASS' if la['warm_added_ms'] <= T_LAUNCH_MS else '**MISS**'} |"
        )
    if st and status_scale.REPORT in st["results"]:
        b = st["results"][status_scale.REPORT]["beyond_interpreter_ms"]
        L.append(
            f"| (issue 5) `report` ≤ {T_REPORT_MS:g} ms beyond interpreter start | +{b} ms | "
            f"{'PASS' if b <= T_REPORT_MS else '**MISS**'} |"
        )
    if plan.quick:
        L += [
            "",
            f"Quick run: {plan.soak_total:,}-request soak, {plan.ledger_rows:,}-row ledger, one short slice per "
            "level; it checks that the suite runs, its numbers are not results.",
        ]
    return "\n".join(L) + "\n"


def ab_table(s: dict) -> str:
    """--streams-only: each contender's added latency over direct, per level (no targets, no file)."""
    L = [
        "| streams | contender | n | TTFB p50 | TTFB p99 | beyond schedule p50 | p99 | gap p99 | req/s ÷ direct "
        "| CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for conc, level in s.get("levels", {}).items():
        d = level["direct"]
        for name, x in level.items():
            if name == "direct":
                continue
            L.append(
                f"| {conc} | {name} | {x['n']} | {fmt(x['ttfb_p50_ms'] - d['ttfb_p50_ms'], sign=True)} | "
                f"{fmt(x['ttfb_p99_ms'] - d['ttfb_p99_ms'], sign=True)} | "
                f"{fmt(x['excess_p50_ms'] - d['excess_p50_ms'], sign=True)} | "
                f"{fmt(x['excess_p99_ms'] - d['excess_p99_ms'], sign=True)} | "
                f"{fmt(x['gap_p99_ms'] - d['gap_p99_ms'], sign=True)} | {fmt(x['rps'] / d['rps'])} | "
                f"{fmt(x.get('proxy_cpu_ms_per_req'))} |"
            )
    mem = s.get("memory", {})
    L.append(
        f"\nagentmeter RSS: after warm-up {fmt(mem.get('rss_after_warmup_mb'), 1)} MB, "
        f"peak at 64 streams {fmt(mem.get('rss_peak_64_mb'), 1)} MB"
    )
    if mem.get("baseline_rss_after_warmup_mb") is not None:
        L.append(
            f"baseline RSS: after warm-up {fmt(mem.get('baseline_rss_after_warmup_mb'), 1)} MB, "
            f"peak at 64 streams {fmt(mem.get('baseline_rss_peak_64_mb'), 1)} MB"
        )
    load = s.get("load")
    if load:
        L.append(
            f"machine during the slices: {load['busy_cores']} cores busy, of which the suite "
            f"{load['suite_cores']} and other processes {load['other_cores']} (os.getloadavg: "
            f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})"
        )
    return "\n".join(L)


# -- main ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (< 60 s without LiteLLM); writes nothing")
    ap.add_argument("--no-litellm", action="store_true", help="skip LiteLLM (no install, no contender)")
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also measure a bare aiohttp relay (bench_floor.py): what any Python proxy costs here",
    )
    ap.add_argument("--pace-ms", type=float, default=2.0, help="mean gap between streamed events (default 2)")
    ap.add_argument("--json", action="store_true", help="print raw results as JSON")
    ap.add_argument(
        "--streams-only",
        action="store_true",
        help="only the stream slices (no soak, ingest, status, launch); for quick A/B work, writes nothing",
    )
    ap.add_argument("--levels", default=None, help="concurrency levels for --streams-only, e.g. 16 or 1,16")
    ap.add_argument("--slices", type=int, default=None, help="slices per contender and level (default: the plan's)")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="where a full run writes its Markdown")
    ap.add_argument("--no-write", action="store_true", help="full run without writing --out")
    ap.add_argument(
        "--baseline",
        default=None,
        metavar="SRC",
        help="also measure the daemon built from another source tree's src/ (e.g. a git worktree of "
        "main), interleaved with this one: before/after in one run",
    )
    args = ap.parse_args()
    plan = make_plan(args)
    if args.slices:
        plan.slices = {k: args.slices for k in plan.slices}
    levels = tuple(int(x) for x in args.levels.split(",")) if args.levels else LEVELS
    if args.streams_only:
        plan.soak_total = 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    r: dict = {
        "started": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "command": " ".join(["python benchmarks/run.py", *sys.argv[1:]]),
        "plan": asdict(plan),
    }
    tmp = tempfile.TemporaryDirectory(prefix="agentmeter-suite-")
    work = Path(tmp.name)
    procs = po.Procs(work)
    failed = False
    try:
        srv = Servers(
            procs,
            work,
            want_litellm=not args.no_litellm,
            want_floor=args.floor,
            baseline=str(Path(args.baseline).resolve()) if args.baseline else None,
        )
        try:
            log("starting the fake provider and the agentmeter daemon…")
            srv.start()
            r["litellm_note"] = (
                srv.litellm_note if srv.litellm_ok or args.no_litellm else f"LiteLLM NOT measured: {srv.litellm_note}"
            )
            log(
                f"fake :{srv.fake_port}, agentmeter :{srv.am_port} (pid {srv.am_pid})"
                + (f", LiteLLM :{srv.lt_port} (pid {srv.lt_pid})" if srv.litellm_ok else "")
            )
            s = asyncio.run(run_streams(plan, srv, levels))
            s["am_completed"] = s["memory"]["requests_served"]
            s["ledger"] = po.ledger_statuses(srv.home)
            s["ledger_ok_rows"] = s["ledger"].get("ok", 0)
            s["fake_served"] = fake_served(srv.fake_port)
            if srv.base_port:
                s["baseline_ledger"] = po.ledger_statuses(srv.work / "home-baseline")
            r["streams"] = s
            problems = wrong_work(s)
            if problems:
                raise RuntimeError("the benchmark measured the wrong work: " + "; ".join(problems))
        except Exception as exc:
            failed = True
            r["streams_error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            procs.stop_all()
        r.setdefault("litellm_note", srv.litellm_note)
        if args.streams_only:
            print(json.dumps(r, indent=2, default=str) if args.json else ab_table(r.get("streams", {})))
            return 1 if failed else 0

        log(f"ledger ingest ({plan.ingest_rows:,} rows)…")
        try:
            r["ingest"] = bench_ingest.measure(plan.ingest_rows, 100 if plan.quick else 500)
        except Exception as exc:
            failed = True
            r["ingest_error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        log(f"status/report on {plan.ledger_rows:,} rows…")
        try:
            r["status_report"] = status_scale.measure(plan.ledger_rows, 180, plan.status_runs, log=log)
        except Exception as exc:
            failed = True
            r["status_report_error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        log("run launch overhead…")
        try:
            r["launch"] = launch_overhead.measure(plan.launch_runs)
        except Exception as exc:
            failed = True
            r["launch_error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        procs.stop_all()
        tmp.cleanup()
    r["wall_s"] = time.monotonic() - started
    if args.json:
        print(json.dumps(r, indent=2, default=str))
    else:
        text = markdown(r, plan)
        print(text)
        if not plan.quick and not args.no_write and not failed:
            Path(args.out).write_text(text)
            log(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
