"""Daemon memory under large request bodies (issue 14.9), and another session's latency during a
decompression bomb.

Starts the fake provider and a real daemon (`agentmeter proxy serve`) as subprocesses on 127.0.0.1, sends
N parallel bodies of SIZE MiB, and reads the daemon's peak RSS (VmHWM) before and after. Then sends zstd
bombs (a few KB that inflate to 120 MiB each) from one session while another session sends small requests,
and reports the small requests' latency against the same requests with no bomb in flight.

    python benchmarks/body_memory.py                 # this checkout
    python benchmarks/body_memory.py --src /path/to/other/checkout/src   # the daemon from another tree

Fails loudly (exit 1) if any request is answered with anything but 200, so no figure is measured on
refused requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import HOST, Procs, child_env, open_session, start_fake, wait_for_file


def vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_daemon(procs: Procs, home: Path, upstream: str, src: str | None) -> tuple[int, int]:
    import urllib.request

    env = child_env(
        {
            "AGENTMETER_HOME": str(home),
            "AGENTMETER_UPSTREAM_ANTHROPIC": upstream,
            "AGENTMETER_UPSTREAM_OPENAI": upstream,
            "AGENTMETER_PORT": "0",
        }
    )
    if src:
        env["PYTHONPATH"] = src
    p = procs.start("proxy", [sys.executable, "-m", "agentmeter", "proxy", "serve", "--port", "0", "--quiet"], env)
    port = int(wait_for_file(home / "run" / "proxy.port", p, procs, "proxy"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/_agentmeter/v1/health", timeout=2) as r:
                if json.loads(r.read()).get("ok"):
                    return p.pid, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(procs.log("proxy"))


def body(i: int, mib: float, text: str = "x") -> bytes:
    return json.dumps(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 10,
            "stream": False,
            "messages": [{"role": "user", "content": f"req {i} " + text * int(mib * 2**20)}],
        }
    ).encode()


USAGE = json.dumps({"input_tokens": 10, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 5})


async def post(http: aiohttp.ClientSession, url: str, data: bytes, extra: dict | None = None) -> tuple[int, float]:
    t0 = time.perf_counter()
    async with http.post(
        url,
        data=data,
        headers={
            "content-type": "application/json",
            "x-api-key": "sk-ant-test-x",
            "x-fake-usage": USAGE,
            "x-fake-skip-decode": "1",
            **(extra or {}),
        },
    ) as r:
        await r.read()
        return r.status, (time.perf_counter() - t0) * 1000


async def scenario(base: str, big_tok: str, other_tok: str, n: int, mib: float, bombs: int) -> dict:
    url_big = f"{base}/s/{big_tok}/anthropic/v1/messages"
    url_other = f"{base}/s/{other_tok}/anthropic/v1/messages"
    out: dict = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        payloads = [body(i, mib) for i in range(n)]
        got = await asyncio.gather(*(post(http, url_big, p) for p in payloads))
        del payloads
        out["large_statuses"] = [s for s, _ in got]

        small = [body(1000 + i, 0.001) for i in range(40)]
        quiet = [await post(http, url_other, s) for s in small[:20]]
        filler = "A" * (120 * 2**20)
        cctx = zstandard.ZstdCompressor(level=1)
        bomb_bodies = [
            cctx.compress(
                f'{{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{{"role":"user",'
                f'"content":"bomb {i} {filler}"}}]}}'.encode()
            )
            for i in range(bombs)
        ]
        del filler
        out["bomb_kb"] = round(len(bomb_bodies[0]) / 1024, 1)
        bomb_tasks = [asyncio.ensure_future(post(http, url_big, b, {"content-encoding": "zstd"})) for b in bomb_bodies]  # noqa: TID251 (referenced and awaited here)
        await asyncio.sleep(0.02)
        during = []
        for s in small[20:]:
            during.append(await post(http, url_other, s))
            if all(t.done() for t in bomb_tasks):
                break
        bomb_results = await asyncio.gather(*bomb_tasks)
        out["bomb_statuses"] = [s for s, _ in bomb_results]
        out["small_statuses"] = [s for s, _ in quiet + during]
        out["small_quiet_ms"] = [ms for _, ms in quiet]
        out["small_during_ms"] = [ms for _, ms in during]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", help="PYTHONPATH for the daemon (another checkout's src/)")
    ap.add_argument("-n", type=int, default=8, help="parallel large bodies (default 8)")
    ap.add_argument("--mib", type=float, default=60, help="size of each large body in MiB (default 60)")
    ap.add_argument("--bombs", type=int, default=4, help="zstd bombs sent from one session (default 4)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentmeter-bodymem-") as tmp:
        work = Path(tmp)
        procs = Procs(work)
        try:
            fake = start_fake(procs, "fake")
            home = work / "home"
            pid, port = start_daemon(procs, home, f"http://{HOST}:{fake}", args.src)
            base = f"http://{HOST}:{port}"
            big, other = open_session(home, port), open_session(home, port)
            idle = vm(pid, "VmRSS")
            res = asyncio.run(scenario(base, big, other, args.n, args.mib, args.bombs))
            peak = vm(pid, "VmHWM")
        finally:
            procs.stop_all()
    bad = [s for key in ("large_statuses", "bomb_statuses", "small_statuses") for s in res[key] if s != 200]
    src = args.src or os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/src"
    print(f"daemon from {src}")
    print(f"{args.n} parallel bodies of {args.mib:g} MiB: daemon RSS idle {idle:.0f} MB, peak {peak:.0f} MB")
    q, d = res["small_quiet_ms"], res["small_during_ms"]
    print(
        f"another session's small requests: p50 {statistics.median(q):.1f} ms quiet, "
        f"{statistics.median(d):.1f} ms (max {max(d):.1f} ms) during {args.bombs} zstd bombs "
        f"of {res['bomb_kb']} KB → 120 MiB ({len(d)} requests)"
    )
    if bad:
        print(f"FAILED: {len(bad)} answers were not 200: {sorted(set(bad))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
