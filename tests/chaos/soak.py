"""Soak: N concurrent streams through the daemon for a while; memory, descriptors and rows at the end.

    python tests/chaos/soak.py --seconds 600 --streams 64 [--json out.json]

The daemon is started as a user starts it (`agentmeter proxy start`), the fake provider runs as its own
process, and the clients are aiohttp streams in this process (Anthropic Messages, OpenAI Responses, Chat
Completions) over four sessions. Resident memory and open descriptors of the daemon are sampled from /proc
every second; the baseline is taken once the load has run for a fifth of the time (caches, pools and
the allocator have settled by then). At the end every completed response must have exactly one row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from chaos.harness import proc_stats, start_fake, stop_daemon, user_env, wait_healthy
else:
    from .harness import proc_stats, start_fake, stop_daemon, user_env, wait_healthy

TERMINAL = {"messages": b"event: message_stop", "responses": b"event: response.completed", "chat": b"data: [DONE]"}


def _request(api: str, urls: dict, n: int) -> tuple[str, dict, bytes]:
    turn = uuid.uuid4().hex
    if api == "messages":
        body = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": f"turn {turn}"}],
        }
        return (
            urls["anthropic"] + "/v1/messages",
            {"x-api-key": urls["key"], "session_id": f"agent-{n}"},
            json.dumps(body).encode(),
        )
    hdrs = {"Authorization": f"Bearer {urls['okey']}", "session_id": f"agent-{n}"}
    if api == "responses":
        return (
            urls["openai"] + "/responses",
            hdrs,
            json.dumps({"model": "gpt-5.1", "stream": True, "input": f"turn {turn}"}).encode(),
        )
    return (
        urls["openai"] + "/chat/completions",
        hdrs,
        json.dumps({"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": turn}]}).encode(),
    )


async def _client(n: int, http: aiohttp.ClientSession, urls: dict, stop: asyncio.Event, counts: dict) -> None:
    rnd = random.Random(n)
    while not stop.is_set():
        api = rnd.choices(("messages", "responses", "chat"), weights=(6, 3, 1))[0]
        url, hdrs, body = _request(api, urls, n)
        counts["attempts"] += 1
        try:
            async with http.post(url, data=body, headers={**hdrs, "Content-Type": "application/json"}) as r:
                data = await r.read()
            counts["complete" if r.status == 200 and TERMINAL[api] in data else f"bad {r.status}"] += 1
        except (aiohttp.ClientError, OSError) as exc:
            counts[f"error {type(exc).__name__}"] += 1


async def _drive(seconds: float, streams: int, sessions: list[dict], pid: int, samples: list) -> dict:
    import collections

    counts: collections.Counter = collections.Counter()
    stop = asyncio.Event()
    conn = aiohttp.TCPConnector(limit=streams * 2)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as http:
        tasks = [
            asyncio.ensure_future(_client(i, http, sessions[i % len(sessions)], stop, counts))  # noqa: TID251
            for i in range(streams)
        ]
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(1.0)
            samples.append({"t": round(time.monotonic() - t0, 1), "completed": counts["complete"], **proc_stats(pid)})
        stop.set()
        await asyncio.gather(*tasks)
    return dict(counts)


def soak(workdir: Path, seconds: float, streams: int) -> dict:
    home = workdir / "home"
    fake = start_fake(workdir, pace_ms=5)
    fake.configure(deltas=10)
    env = user_env(home, fake)
    samples: list[dict] = []
    try:
        subprocess.run(
            [sys.executable, "-m", "agentmeter", "proxy", "start"], env=env, check=True, capture_output=True, timeout=60
        )
        h = wait_healthy(home)
        pid = h["pid"]
        sessions = []
        for _ in range(4):
            e = json.loads(
                subprocess.run(
                    [sys.executable, "-m", "agentmeter", "env", "--json"],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                    timeout=60,
                ).stdout
            )["env"]
            sessions.append(
                {
                    "anthropic": e["ANTHROPIC_BASE_URL"],
                    "openai": e["OPENAI_BASE_URL"],
                    "key": e.get("ANTHROPIC_API_KEY", "sk-ant-client"),
                    "okey": e.get("OPENAI_API_KEY", "sk-client"),
                }
            )
        idle_before = proc_stats(pid)
        counts = asyncio.run(_drive(seconds, streams, sessions, pid, samples))
        time.sleep(1.0)
        idle_after = proc_stats(pid)
        final = wait_healthy(home)
    finally:
        stop_daemon(home, env)
        fake.stop()
    import sqlite3

    conn = sqlite3.connect(f"file:{home / 'ledger.db'}?mode=ro", uri=True)
    by_status = dict(conn.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall())
    conn.close()
    warm = next(s for s in samples if s["t"] >= seconds / 5)
    tail = samples[-max(1, len(samples) // 10) :]
    rss_end = statistics.median(s["rss_kib"] for s in tail)
    return {
        "seconds": seconds,
        "streams": streams,
        "client": counts,
        "rows_by_status": by_status,
        "rows": sum(by_status.values()),
        "responses_per_s": round(counts.get("complete", 0) / seconds, 1),
        "rss_kib": {
            "idle_before": idle_before["rss_kib"],
            "baseline": warm["rss_kib"],
            "end": rss_end,
            "max": max(s["rss_kib"] for s in samples),
            "idle_after": idle_after["rss_kib"],
        },
        "rss_growth_pct": round(100 * (rss_end - warm["rss_kib"]) / warm["rss_kib"], 2),
        "fds": {
            "idle_before": idle_before["fds"],
            "baseline": warm["fds"],
            "end": tail[-1]["fds"],
            "max": max(s["fds"] for s in samples),
            "idle_after": idle_after["fds"],
        },
        "threads": {"baseline": warm["threads"], "end": tail[-1]["threads"]},
        "ledger_backlog": final.get("ledger_backlog"),
        "ledger_dropped": final.get("ledger_dropped"),
        "samples": samples,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--json", help="also write the report (with every sample) here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentmeter-soak-") as d:
        r = soak(Path(d), args.seconds, args.streams)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    print(json.dumps({k: v for k, v in r.items() if k != "samples"}, indent=2))
    ok = (
        r["rss_growth_pct"] < 10
        and r["fds"]["idle_after"] <= r["fds"]["idle_before"] + 2 * args.streams
        and r["rows_by_status"].get("ok", 0) == r["client"].get("complete", 0)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
