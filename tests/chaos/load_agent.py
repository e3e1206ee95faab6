"""A scripted agent for the crash and soak runs: N concurrent streaming clients, each retrying like an SDK.

Run as the command under `agentmeter run -- python load_agent.py …`, it reads the base URLs and keys
from the environment the wrapper set. Every attempt carries a unique `x-claude-code-agent-id`, which the
proxy stores on the request's row, so the harness can match what each client received with what the
ledger holds. One JSON line per attempt goes to --log:

    {"id", "api", "outcome": "complete" | "interrupted" | "no_response" | "http_error", "status", "rid"}

`interrupted` means response headers (and maybe some events) arrived but not the terminal event;
`no_response` means the connection failed before any response. The stream is read with http.client so
the bytes are exactly what the proxy sent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import threading
import time
import uuid
from urllib.parse import urlsplit

TERMINAL = {"messages": b"event: message_stop", "responses": b"event: response.completed", "chat": b"data: [DONE]"}
ID_MARK = {"messages": b'"type":"message_start"', "responses": b'"type":"response.created"', "chat": b'"id":"chatcmpl'}


def request_for(api: str, turn: str) -> tuple[str, str, dict, bytes]:
    """(family, path, headers, body) for one streamed turn."""
    if api == "messages":
        base, key = os.environ["ANTHROPIC_BASE_URL"], os.environ.get("ANTHROPIC_API_KEY", "sk-ant-client-load")
        body = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": f"turn {turn}"}],
        }
        return base, "/v1/messages", {"x-api-key": key, "anthropic-version": "2023-06-01"}, json.dumps(body).encode()
    base, key = os.environ["OPENAI_BASE_URL"], os.environ.get("OPENAI_API_KEY", "sk-client-load")
    hdrs = {"Authorization": f"Bearer {key}"}
    if api == "responses":
        body = {"model": "gpt-5.1", "stream": True, "input": f"turn {turn}"}
        return base, "/responses", hdrs, json.dumps(body).encode()
    body = {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": f"turn {turn}"}]}
    return base, "/chat/completions", hdrs, json.dumps(body).encode()


def attempt(api: str, turn: str, attempt_id: str, timeout: float) -> dict:
    base, path, hdrs, body = request_for(api, turn)
    u = urlsplit(base)
    out = {"id": attempt_id, "api": api, "outcome": "no_response", "status": None, "rid": None}
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            u.path.rstrip("/") + path,
            body=body,
            headers={**hdrs, "Content-Type": "application/json", "x-claude-code-agent-id": attempt_id},
        )
        resp = conn.getresponse()
        out["status"] = resp.status
        if resp.status != 200:
            out["outcome"], out["body"] = "http_error", resp.read()[:300].decode(errors="replace")
            return out
        out["outcome"] = "interrupted"
        terminal = False
        while True:
            line = resp.readline()
            if not line:
                break
            if out["rid"] is None and ID_MARK[api] in line:
                out["rid"] = _response_id(api, line)
            if TERMINAL[api] in line:
                terminal = True
            elif terminal and line in (b"\n", b"\r\n"):
                out["outcome"] = "complete"  # the terminal event, up to its blank line, arrived
                break
    except (OSError, http.client.HTTPException) as exc:
        out["error"] = type(exc).__name__
    finally:
        conn.close()
    return out


def _response_id(api: str, line: bytes) -> str | None:
    try:
        d = json.loads(line.split(b"data: ", 1)[1])
    except (IndexError, ValueError):
        return None
    if api == "messages":
        return d.get("message", {}).get("id")
    if api == "responses":
        return d.get("response", {}).get("id")
    return d.get("id")


def client(n: int, args, log, lock: threading.Lock, stop: threading.Event, counts: dict) -> None:
    rnd = random.Random(n)
    while not stop.is_set():
        api = rnd.choices(("messages", "responses", "chat"), weights=(6, 3, 1))[0]
        turn = uuid.uuid4().hex
        deadline = time.monotonic() + args.give_up
        while True:  # retry the same turn until it completes, like an SDK (with a fresh attempt id each time)
            r = attempt(api, turn, uuid.uuid4().hex, args.timeout)
            r["client"] = n
            with lock:
                log.write(json.dumps(r) + "\n")
                log.flush()
                counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
            if r["outcome"] == "complete":
                break
            if r["outcome"] == "http_error" and r["status"] not in (502, 503, 529):
                break  # an answer (a refusal, a 4xx): retrying it would be wrong
            if time.monotonic() > deadline:
                with lock:
                    counts["gave_up"] = counts.get("gave_up", 0) + 1
                break
            time.sleep(args.backoff * (1 + rnd.random()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--log", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--backoff", type=float, default=0.2)
    ap.add_argument("--give-up", type=float, default=60.0)
    args = ap.parse_args()
    stop = threading.Event()
    lock = threading.Lock()
    counts: dict = {}
    with open(args.log, "a") as log:
        threads = [
            threading.Thread(target=client, args=(i, args, log, lock, stop, counts), daemon=True)
            for i in range(args.streams)
        ]
        for t in threads:
            t.start()
        while not os.path.exists(args.stop_file):
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(args.give_up + args.timeout)
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
