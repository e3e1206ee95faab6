"""Issue 14.9: request bodies cannot exhaust the daemon. Large bodies are held under one daemon-wide byte
budget, and decompression (a 3.9 KB zstd body can inflate to 120 MiB) runs off the event loop, so one
session's bomb does not stall another session's requests. Real proxy, real fake provider, real sockets."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import zstandard

from conftest import make_stack

SMALL_USAGE = json.dumps({"input_tokens": 10, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 5})


def big_body(mib: int, i: int) -> bytes:
    head = json.dumps(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 10,
            "stream": False,
            "messages": [{"role": "user", "content": f"body {i} "}],
        }
    ).encode()
    pad = b"x" * (mib * 2**20)
    return head.replace(f"body {i} ".encode(), f"body {i} ".encode() + pad)


def test_parallel_large_bodies_stay_under_the_byte_budget(tmp_path):
    stack, close = make_stack(tmp_path)
    try:
        budget = 16 * 2**20
        stack.state.bodies.budget = budget
        s = stack.open_session()
        url = s["anthropic"] + "/v1/messages"
        bodies = [big_body(6, i) for i in range(8)]  # 8 × 6 MiB in parallel against a 16 MiB budget

        async def burst():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

                async def one(data: bytes):
                    async with http.post(
                        url,
                        data=data,
                        headers={
                            "content-type": "application/json",
                            "x-api-key": "sk-ant-test-client",
                            "x-fake-usage": SMALL_USAGE,
                            "x-fake-skip-decode": "1",
                        },
                    ) as r:
                        return r.status

                return await asyncio.gather(*(one(b) for b in bodies))

        statuses = asyncio.run(burst())
        assert statuses == [200] * 8
        gate = stack.state.bodies
        assert 6 * 2**20 < gate.peak <= budget, f"held {gate.peak / 2**20:.1f} MiB at once"
        assert gate.held == 0  # every request gave its bytes back
        received = [r for r in stack.received() if r.path == "/v1/messages"]
        assert sorted(r.body_bytes for r in received) == sorted(len(b) for b in bodies)  # nothing cut
    finally:
        close()


def test_a_decompression_bomb_does_not_stall_another_session(tmp_path):
    stack, close = make_stack(tmp_path)
    try:
        bomb_session, other = stack.open_session(), stack.open_session()
        n_bombs = 6
        filler = "A" * (120 * 2**20)
        cctx = zstandard.ZstdCompressor(level=1)
        # each bomb distinct, or the loop brake (identical bodies re-sent) would refuse the later ones
        bombs_raw = [
            cctx.compress(
                json.dumps(
                    {
                        "model": "claude-haiku-4-5",
                        "max_tokens": 10,
                        "messages": [{"role": "user", "content": f"bomb {i} " + filler}],
                    }
                ).encode()
            )
            for i in range(n_bombs)
        ]
        del filler
        assert all(len(b) < 64 * 1024 for b in bombs_raw)

        async def scene():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

                async def post(url, data, headers):
                    async with http.post(
                        url,
                        data=data,
                        headers={
                            "content-type": "application/json",
                            "x-api-key": "sk-ant-test-client",
                            "x-fake-usage": SMALL_USAGE,
                            **headers,
                        },
                    ) as r:
                        await r.read()
                        return r.status

                bombs = [
                    asyncio.ensure_future(  # noqa: TID251 (referenced and awaited here)
                        post(
                            bomb_session["anthropic"] + "/v1/messages",
                            bomb,
                            {"content-encoding": "zstd", "x-fake-skip-decode": "1", "x-test-kind": "bomb"},
                        )
                    )
                    for bomb in bombs_raw
                ]
                await asyncio.sleep(0.05)  # the bombs are in the daemon, being decoded
                small = json.dumps(
                    {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
                ).encode()
                other_status = await post(other["anthropic"] + "/v1/messages", small, {"x-test-kind": "small"})
                return other_status, await asyncio.gather(*bombs)

        other_status, bomb_statuses = asyncio.run(scene())
        assert other_status == 200
        assert all(st == 200 for st in bomb_statuses), bomb_statuses  # relayed as sent, never a 500
        order = [r.headers.get("x-test-kind") for r in stack.received() if r.path == "/v1/messages"]
        after = order[order.index("small") + 1 :].count("bomb")
        # On the event loop, every bomb was inflated before the other session's request was even read, so
        # it reached the provider after all of them; off the loop it overtakes most of them.
        assert after >= 2, f"the other session's request waited behind the bombs: {order}"
    finally:
        close()
