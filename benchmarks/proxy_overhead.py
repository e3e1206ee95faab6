"""Proxy overhead: streamed requests direct to a local fake provider vs through the agentmeter proxy.

    python benchmarks/proxy_overhead.py            # full run (about a minute)
    python benchmarks/proxy_overhead.py --quick    # a few-second smoke run
    python benchmarks/proxy_overhead.py --json     # machine-readable results

The fake provider and the real daemon (`agentmeter proxy serve`) run as separate processes, so they do
not share the client's event loop. Direct and proxied requests alternate (ABAB, order swapped every
round) so drift hits both. Every request is an Anthropic streaming request with a ~100 KB user message,
like Claude Code's. TTFB is the time from sending the request to the first body chunk.

Measured: added TTFB and total latency (p50/p99) at 1 and 16 concurrent streams, requests per second,
whether a paced stream (events 20 ms apart) keeps its gaps, and that the ledger holds one `ok` row per
proxied request (so the benchmark measured the metered path).
Targets: added TTFB <= 1 ms at p50 and <= 3 ms at p99 with one stream; paced gaps preserved within 1 ms.

Only the standard library and the aiohttp client are used; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

HOST = "127.0.0.1"
PACE_MS = 20.0
TARGET_TTFB_P50_MS = 1.0
TARGET_TTFB_P99_MS = 3.0
TARGET_GAP_MS = 1.0


# -- statistics ---------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass
class Sample:
    ttfb_ms: float
    total_ms: float
    chunks: list[float]  # arrival times (s, perf_counter) of each body chunk


@dataclass
class Contender:
    name: str
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    busy_s: float = 0.0  # wall time spent running this contender's requests (for req/s)

    def stats(self) -> dict:
        ttfb = [s.ttfb_ms for s in self.samples]
        total = [s.total_ms for s in self.samples]
        return {
            "n": len(self.samples),
            "errors": len(self.errors),
            "ttfb_p50_ms": pct(ttfb, 50),
            "ttfb_p99_ms": pct(ttfb, 99),
            "total_p50_ms": pct(total, 50),
            "total_p99_ms": pct(total, 99),
            "rps": len(self.samples) / self.busy_s if self.busy_s else float("nan"),
        }


# -- processes ----------------------------------------------------------------------------------------


class Procs:
    """Subprocesses we started; all are stopped on exit (normal, error, Ctrl-C or SIGTERM)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict) -> subprocess.Popen:
        out = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (handed to the child)
        # Own session: a terminal Ctrl-C reaches only us, and we stop the children in order.
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        out.close()
        self.procs.append((name, p))
        return p

    def log(self, name: str) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / f"{name}.log").read_text(errors="replace")[-4000:]
        return ""

    def stop_all(self) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        for _, p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait(5)
        self.procs.clear()


def child_env(extra: dict) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGENTMETER_") and not k.endswith("_API_KEY") and not k.endswith("_BASE_URL")
    }
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # never touch a desktop keyring
    env.update(extra)
    return env


def wait_for_file(path: Path, proc: subprocess.Popen, procs: Procs, name: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited (code {proc.returncode}):\n{procs.log(name)}")
        with contextlib.suppress(OSError):
            text = path.read_text().strip()
            if text:
                return text
        time.sleep(0.02)
    raise RuntimeError(f"{name} did not write {path} within {timeout:.0f} s:\n{procs.log(name)}")


def http_json(url: str, payload: dict, headers: dict | None = None) -> dict:
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def start_fake(procs: Procs, name: str, pace_ms: float = 0.0) -> int:
    port_file = procs.workdir / f"{name}.port"
    cmd = [sys.executable, "-m", "agentmeter.testing.fake_provider", "--port-file", str(port_file)]
    if pace_ms:
        cmd += ["--pace-ms", str(pace_ms)]
    p = procs.start(name, cmd, child_env({}))
    return int(wait_for_file(port_file, p, procs, name))


def start_proxy(
    procs: Procs, home: Path, upstream: str, profile: str | None, extra: dict | None = None, name: str = "proxy"
) -> int:
    """A real daemon (`agentmeter proxy serve`); `extra` env, e.g. PYTHONPATH of another source tree."""
    env = child_env(
        {
            "AGENTMETER_HOME": str(home),
            "AGENTMETER_UPSTREAM_ANTHROPIC": upstream,
            "AGENTMETER_UPSTREAM_OPENAI": upstream,
            "AGENTMETER_PORT": "0",
            **(
                {"AGENTMETER_EVENT_LOOP": os.environ["AGENTMETER_EVENT_LOOP"]}
                if "AGENTMETER_EVENT_LOOP" in os.environ
                else {}
            ),
            **(extra or {}),
        }
    )
    prefix = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else [])
    p = procs.start(name, [*prefix, "-m", "agentmeter", "proxy", "serve", "--port", "0", "--quiet"], env)
    port = int(wait_for_file(home / "run" / "proxy.port", p, procs, name))
    deadline = time.monotonic() + 20
    while True:  # the port file is written once the site listens; confirm with the health endpoint
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/_agentmeter/v1/health", timeout=2) as r:
                if json.loads(r.read()).get("ok"):
                    return port
        except OSError:
            pass
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} is not healthy:\n{procs.log(name)}")
        time.sleep(0.05)


def open_session(home: Path, port: int) -> str:
    token = (home / "run" / "control.token").read_text().strip()
    got = http_json(
        f"http://{HOST}:{port}/_agentmeter/v1/sessions", {"agent": "bench"}, {"Authorization": f"Bearer {token}"}
    )
    return got["token"]


def ledger_statuses(home: Path) -> dict[str, int]:
    """Rows per status in the daemon's ledger (a metered run has only `ok` rows)."""
    conn = sqlite3.connect(f"file:{home / 'ledger.db'}?mode=ro", uri=True, timeout=10)
    try:
        return dict(conn.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall())
    finally:
        conn.close()


def ledger_ok_rows(home: Path) -> int:
    conn = sqlite3.connect(f"file:{home / 'ledger.db'}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM requests WHERE status='ok'").fetchone()[0]
    finally:
        conn.close()


# -- the client ---------------------------------------------------------------------------------------


def request_body(kb: int) -> bytes:
    words = (
        "the proxy relays every byte as it arrives and meters token usage on the side; "
        "def handler(request): return await forward(request) # src/agentmeter/proxy/app.py\n"
    )
    text = (words * (kb * 1024 // len(words) + 1))[: kb * 1024]
    return json.dumps(
        {
            "model": "claude-sonnet-4-5",
            "stream": True,
            "max_tokens": 100,
            "system": [{"type": "text", "text": "You are Claude Code, a coding agent."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        }
    ).encode()


HEADERS = {
    "Content-Type": "application/json",
    "anthropic-version": "2023-06-01",
    "x-api-key": "sk-ant-bench-not-a-key",
    "anthropic-beta": "fine-grained-tool-streaming-2025-05-14",
    "User-Agent": "claude-cli/2.0.0 (external, cli)",
    "x-claude-code-session-id": "bench-0000",
    "Accept": "application/json",
}


_NONCE = itertools.count()


def fresh(body: bytes) -> bytes:
    """A new user turn each time (same size): identical bodies re-sent would trip the loop brake."""
    return body.replace(b'"text": "the proxy', b'"text": "%08d proxy' % (next(_NONCE) % 10**8), 1)


async def one(http: aiohttp.ClientSession, url: str, body: bytes, c: Contender) -> None:
    body = fresh(body)
    t0 = time.perf_counter()
    chunks: list[float] = []
    tail = b""
    try:
        async with http.post(url, data=body, headers=HEADERS) as r:
            async for chunk in r.content.iter_any():
                chunks.append(time.perf_counter())
                tail = (tail + chunk)[-64:]
            t1 = time.perf_counter()
            if r.status != 200 or b"message_stop" not in tail:
                c.errors.append(f"HTTP {r.status}, stream ended with {tail[-40:]!r}")
                return
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        c.errors.append(f"{type(exc).__name__}: {exc}")
        return
    c.samples.append(Sample((chunks[0] - t0) * 1000, (t1 - t0) * 1000, chunks))


async def batch(http, url: str, body: bytes, c: Contender, n: int) -> None:
    t0 = time.perf_counter()
    await asyncio.gather(*(one(http, url, body, c) for _ in range(n)))
    c.busy_s += time.perf_counter() - t0


async def interleaved(
    http, direct_url: str, proxy_url: str, body: bytes, conc: int, rounds: int, clear_url: str, label: str
) -> tuple[Contender, Contender]:
    """`rounds` rounds; each runs one batch of `conc` concurrent streams per contender, order swapped."""
    d, p = Contender("direct"), Contender("proxy")
    for i in range(rounds):
        pair = [(direct_url, d), (proxy_url, p)]
        for url, c in pair if i % 2 == 0 else pair[::-1]:
            await batch(http, url, body, c, conc)
        if i % 25 == 24:  # the fake keeps what it received; drop it between rounds (untimed)
            await (await http.post(clear_url)).release()
        if label and (i + 1) % max(1, rounds // 4) == 0:
            print(f"  {label}: {i + 1}/{rounds} rounds", file=sys.stderr)
    return d, p


def gaps_ms(samples: list[Sample]) -> list[float]:
    out: list[float] = []
    for s in samples:
        out += [(b - a) * 1000 for a, b in zip(s.chunks, s.chunks[1:], strict=False)]
    return out


# -- run ----------------------------------------------------------------------------------------------


@dataclass
class Plan:
    requests_c1: int
    rounds_c16: int
    paced_requests: int
    warmup: int
    deltas: int
    paced_deltas: int
    body_kb: int


async def bench(plan: Plan, fake_port: int, proxy_port: int, token: str) -> dict:
    fake = f"http://{HOST}:{fake_port}"
    direct_url = f"{fake}/v1/messages"
    proxy_url = f"http://{HOST}:{proxy_port}/s/{token}/anthropic/v1/messages"
    body = request_body(plan.body_kb)
    conn = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    results: dict = {}
    async with aiohttp.ClientSession(
        connector=conn, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=120)
    ) as http:

        async def configure(**kw) -> None:
            await (await http.post(f"{fake}/_fake/config", json={**kw, "reset_received": True})).release()

        await configure(deltas=plan.deltas, pace_ms=0.0, delta_bytes=0)
        # Warm-up: connections, imports, the proxy's session cache, pricing lookups, the ledger writer.
        wd, wp = await interleaved(http, direct_url, proxy_url, body, 1, plan.warmup, f"{fake}/_fake/clear", "")
        wd16, wp16 = await interleaved(http, direct_url, proxy_url, body, 16, 2, f"{fake}/_fake/clear", "")
        proxied = len(wp.samples) + len(wp16.samples)  # every proxied stream that completed, warm-up included
        warm_errors = wd.errors + wp.errors + wd16.errors + wp16.errors

        for conc, rounds in ((1, plan.requests_c1), (16, plan.rounds_c16)):
            d, p = await interleaved(
                http, direct_url, proxy_url, body, conc, rounds, f"{fake}/_fake/clear", f"c={conc}"
            )
            results[f"c{conc}"] = {"direct": d.stats(), "proxy": p.stats(), "errors": (d.errors + p.errors)[:5]}
            proxied += len(p.samples)

        # Paced: events PACE_MS apart; does the proxy keep the gaps (no buffering, no coalescing)?
        await configure(deltas=plan.paced_deltas, pace_ms=PACE_MS)
        d, p = await interleaved(
            http, direct_url, proxy_url, body, 1, plan.paced_requests, f"{fake}/_fake/clear", "paced"
        )
        proxied += len(p.samples)
        await configure(deltas=plan.deltas, pace_ms=0.0)
        gd, gp = gaps_ms(d.samples), gaps_ms(p.samples)
        paced = {"pace_ms": PACE_MS, "requests": len(p.samples), "errors": (d.errors + p.errors)[:5]}
        for name, g, c in (("direct", gd, d), ("proxy", gp, p)):
            paced[name] = {
                "gap_p50_ms": pct(g, 50),
                "gap_p99_ms": pct(g, 99),
                "gap_max_ms": max(g, default=0),
                "gap_min_ms": min(g, default=0),
                "chunks_per_stream": (sum(len(s.chunks) for s in c.samples) / len(c.samples) if c.samples else 0),
                "ttfb_p50_ms": pct([s.ttfb_ms for s in c.samples], 50),
            }
        paced["dev_p50_ms"] = paced["proxy"]["gap_p50_ms"] - paced["direct"]["gap_p50_ms"]
        paced["dev_p99_ms"] = paced["proxy"]["gap_p99_ms"] - paced["direct"]["gap_p99_ms"]
        paced["dev_max_ms"] = max(abs(paced["dev_p50_ms"]), abs(paced["dev_p99_ms"]))
        paced["coalesced"] = paced["proxy"]["chunks_per_stream"] < paced["direct"]["chunks_per_stream"] - 0.01
        results["paced"] = paced
        results["proxied_ok"] = proxied
        results["warmup_errors"] = warm_errors[:5]
    return results


def verdicts(r: dict) -> dict:
    c1 = r["c1"]
    added_p50 = c1["proxy"]["ttfb_p50_ms"] - c1["direct"]["ttfb_p50_ms"]
    added_p99 = c1["proxy"]["ttfb_p99_ms"] - c1["direct"]["ttfb_p99_ms"]
    pc = r["paced"]
    return {
        "ttfb_p50_c1": {
            "added_ms": added_p50,
            "target_ms": TARGET_TTFB_P50_MS,
            "pass": added_p50 <= TARGET_TTFB_P50_MS,
        },
        "ttfb_p99_c1": {
            "added_ms": added_p99,
            "target_ms": TARGET_TTFB_P99_MS,
            "pass": added_p99 <= TARGET_TTFB_P99_MS,
        },
        "paced_gaps": {
            "dev_ms": pc["dev_max_ms"],
            "target_ms": TARGET_GAP_MS,
            "pass": pc["dev_max_ms"] <= TARGET_GAP_MS and not pc["coalesced"],
        },
        "ledger": {
            "rows": r["ledger_ok_rows"],
            "proxied": r["proxied_ok"],
            "pass": r["ledger_ok_rows"] == r["proxied_ok"],
        },
    }


def f(x: float, nd: int = 2) -> str:
    return f"{x:.{nd}f}"


def markdown(r: dict, plan: Plan, v: dict) -> str:
    lines = [
        f"Proxy overhead — {plan.body_kb} KB request, {plan.deltas} deltas/stream "
        f"({r['events_per_stream']} SSE events), {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"aiohttp {aiohttp.__version__}",
        "",
        "| streams | path | n | TTFB p50 ms | TTFB p99 ms | total p50 ms | total p99 ms | req/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, conc in (("c1", 1), ("c16", 16)):
        d, p = r[key]["direct"], r[key]["proxy"]
        lines.append(
            f"| {conc} | direct | {d['n']} | {f(d['ttfb_p50_ms'])} | {f(d['ttfb_p99_ms'])} | "
            f"{f(d['total_p50_ms'])} | {f(d['total_p99_ms'])} | {f(d['rps'], 0)} |"
        )
        lines.append(
            f"| {conc} | proxy | {p['n']} | {f(p['ttfb_p50_ms'])} | {f(p['ttfb_p99_ms'])} | "
            f"{f(p['total_p50_ms'])} | {f(p['total_p99_ms'])} | {f(p['rps'], 0)} |"
        )
        lines.append(
            f"| {conc} | **added** | | **{p['ttfb_p50_ms'] - d['ttfb_p50_ms']:+.2f}** | "
            f"**{p['ttfb_p99_ms'] - d['ttfb_p99_ms']:+.2f}** | "
            f"**{p['total_p50_ms'] - d['total_p50_ms']:+.2f}** | "
            f"**{p['total_p99_ms'] - d['total_p99_ms']:+.2f}** | |"
        )
        lines.append(
            f"| {conc} | ratio proxy÷direct | | {f(p['ttfb_p50_ms'] / d['ttfb_p50_ms'])}× | "
            f"{f(p['ttfb_p99_ms'] / d['ttfb_p99_ms'])}× | {f(p['total_p50_ms'] / d['total_p50_ms'])}× | "
            f"{f(p['total_p99_ms'] / d['total_p99_ms'])}× | {f(p['rps'] / d['rps'])}× |"
        )
    pc = r["paced"]
    pd, pp = pc["direct"], pc["proxy"]
    lines += [
        "",
        f"Paced stream ({f(pc['pace_ms'], 0)} ms between events, {pc['requests']} streams per path):",
        "",
        "| path | gap p50 ms | gap p99 ms | gap min ms | gap max ms | chunks/stream | TTFB p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, g in (("direct", pd), ("proxy", pp)):
        lines.append(
            f"| {name} | {f(g['gap_p50_ms'])} | {f(g['gap_p99_ms'])} | {f(g['gap_min_ms'])} | "
            f"{f(g['gap_max_ms'])} | {f(g['chunks_per_stream'], 1)} | {f(g['ttfb_p50_ms'])} |"
        )
    lines.append(
        f"| **proxy − direct** | **{pc['dev_p50_ms']:+.2f}** | **{pc['dev_p99_ms']:+.2f}** | | | "
        f"{'coalesced!' if pc['coalesced'] else 'same'} | |"
    )

    def mark(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    t = v
    lines += [
        "",
        "| target | measured | result |",
        "|---|---|---|",
        f"| added TTFB p50, 1 stream ≤ {f(TARGET_TTFB_P50_MS, 0)} ms | {t['ttfb_p50_c1']['added_ms']:+.2f} ms | "
        f"{mark(t['ttfb_p50_c1']['pass'])} |",
        f"| added TTFB p99, 1 stream ≤ {f(TARGET_TTFB_P99_MS, 0)} ms | {t['ttfb_p99_c1']['added_ms']:+.2f} ms | "
        f"{mark(t['ttfb_p99_c1']['pass'])} |",
        f"| paced gaps within {f(TARGET_GAP_MS, 0)} ms of direct (p50, p99), no coalescing | "
        f"{f(t['paced_gaps']['dev_ms'])} ms | {mark(t['paced_gaps']['pass'])} |",
        f"| ledger `ok` rows = proxied requests completed | {t['ledger']['rows']} / {t['ledger']['proxied']} | "
        f"{mark(t['ledger']['pass'])} |",
    ]
    errs = r["c1"]["errors"] + r["c16"]["errors"] + pc["errors"] + r["warmup_errors"]
    if errs:
        lines += ["", "Errors (first few): " + "; ".join(errs[:5])]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="requests per path at 1 stream (default 400)")
    ap.add_argument(
        "--rounds16",
        type=int,
        default=None,
        help="rounds of 16 concurrent streams per path (default requests/8, i.e. 2×requests streams)",
    )
    ap.add_argument("--paced", type=int, default=20, help="paced streams per path (default 20)")
    ap.add_argument("--deltas", type=int, default=40, help="content deltas per stream (default 40)")
    ap.add_argument("--body-kb", type=int, default=100, help="user message size in KB (default 100)")
    ap.add_argument("--quick", action="store_true", help="a few-second smoke run")
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    ap.add_argument("--profile", metavar="FILE", help="run the proxy under cProfile, write stats to FILE")
    args = ap.parse_args()
    if args.quick:
        plan = Plan(
            requests_c1=40,
            rounds_c16=3,
            paced_requests=3,
            warmup=10,
            deltas=args.deltas,
            paced_deltas=8,
            body_kb=args.body_kb,
        )
    else:
        plan = Plan(
            requests_c1=args.requests,
            rounds_c16=args.rounds16 or max(1, args.requests // 8),
            paced_requests=args.paced,
            warmup=50,
            deltas=args.deltas,
            paced_deltas=12,
            body_kb=args.body_kb,
        )

    # SIGTERM behaves like Ctrl-C: unwind through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tmp = tempfile.TemporaryDirectory(prefix="agentmeter-bench-")
    work = Path(tmp.name)
    procs = Procs(work)
    home = work / "home"
    try:
        fake_port = start_fake(procs, "fake")
        proxy_port = start_proxy(
            procs, home, f"http://{HOST}:{fake_port}", os.path.abspath(args.profile) if args.profile else None
        )
        token = open_session(home, proxy_port)
        print(f"fake :{fake_port}, proxy :{proxy_port} (pid {procs.procs[-1][1].pid}); running…", file=sys.stderr)
        t0 = time.monotonic()
        r = asyncio.run(bench(plan, fake_port, proxy_port, token))
        r["wall_s"] = time.monotonic() - t0
        r["ledger_ok_rows"] = ledger_ok_rows(home)
        r["events_per_stream"] = plan.deltas + 6
        v = verdicts(r)
        if args.json:
            print(
                json.dumps(
                    {
                        "plan": plan.__dict__,
                        "results": r,
                        "targets": v,
                        "env": {
                            "cpus": os.cpu_count(),
                            "python": sys.version.split()[0],
                            "aiohttp": aiohttp.__version__,
                        },
                    },
                    indent=2,
                )
            )
        else:
            print(markdown(r, plan, v))
        return 0 if all(x["pass"] for x in v.values()) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
