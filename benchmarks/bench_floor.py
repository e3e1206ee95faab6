"""The floor: a bare aiohttp relay (the prototype of shared/reference/deps.md section 6), as a reference
contender (`run.py --floor`): what any aiohttp store-and-forward proxy costs on this machine, with no body
parsing, no budget check, no metering and no ledger.

    UPSTREAM=http://127.0.0.1:PORT python benchmarks/bench_floor.py PORT_FILE
"""

import asyncio
import os
import sys

import aiohttp
from aiohttp import web

UP = os.environ["UPSTREAM"]
HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-encoding",
}


async def main():
    session = aiohttp.ClientSession(
        auto_decompress=False,
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=128, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600),
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
    )

    async def handle(request):
        body = await request.read()
        hdrs = {k: v for k, v in request.headers.items() if k.lower() not in HOP} | {"Accept-Encoding": "identity"}
        tail = request.match_info["tail"]
        url = UP + "/" + tail + ("?" + request.query_string if request.query_string else "")
        async with session.request(request.method, url, data=body, headers=hdrs) as up:
            out = web.StreamResponse(
                status=up.status, headers={k: v for k, v in up.headers.items() if k.lower() not in HOP}
            )
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application(client_max_size=64 * 1024**2, handler_args={"auto_decompress": False})
    app.router.add_route("*", "/s/{token}/anthropic/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(site._server.sockets[0].getsockname()[1]))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    await asyncio.Event().wait()


if __name__ == "__main__":
    if os.environ.get("BENCH_UVLOOP"):
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
