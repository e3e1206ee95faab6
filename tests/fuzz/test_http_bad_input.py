"""Hostile requests through the real proxy: a provider-shaped 4xx from agentmeter, or the provider's own
answer, never a 500 from agentmeter itself (and never a crash logged by aiohttp)."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import logging
import socket
import uuid

import aiohttp
import pytest
from aiohttp.http_exceptions import HttpProcessingError
from hypothesis import given
from hypothesis import strategies as st

from faults.conftest import start_stack

from .conftest import TRIED, examples
from .test_parsers import json_values

TAILS = [
    "anthropic/v1/messages",
    "anthropic/v1/messages/count_tokens",
    "anthropic/v1/models",
    "openai/v1/responses",
    "openai/v1/chat/completions",
    "openai/v1/models",
    "openai/v1/files",
    "anthropic/../../_agentmeter/v1/health",
    "anthropic/%2e%2e/%2e%2e/x",
    "anthropic/v1/..%2f..%2fx",
    "anthropic/./v1/messages",
    "anthropic//v1/messages",
    "anthropic/v1/messages%3Fbeta=true",
    "openai/v1/responses%23frag",
    "anthropic/v1/%00",
    "anthropic/%C3%A9",
    "anthropic/%ED%B3%B9",
]


class Crashes(logging.Handler):
    """Unhandled exceptions in a handler: aiohttp logs them, then answers 500."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and issubclass(record.exc_info[0], HttpProcessingError):
            return  # aiohttp's own parser said 400 (malformed HTTP): no agentmeter code ran
        if record.name.startswith("agentmeter") and "ledger commit failed" not in record.getMessage():
            return  # agentmeter's own diagnostics (e.g. a body the loop brake skipped) are not failures
        self.records.append(record)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    stack, close = start_stack(tmp_path_factory.mktemp("fuzz-http"))
    crashes = Crashes()
    for name in ("aiohttp.server", "agentmeter.proxy"):  # crashes, and rows that could not be written
        logging.getLogger(name).addHandler(crashes)
    yield stack, crashes
    for name in ("aiohttp.server", "agentmeter.proxy"):
        logging.getLogger(name).removeHandler(crashes)
    close()


def send(stack, method: str, tail: str, body: bytes, headers: dict, token: str | None = None) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", stack.state.port, timeout=30)
    try:
        conn.putrequest(method, f"/s/{token or stack.session['token']}/{tail}", skip_accept_encoding=True)
        for k, v in {"Content-Length": str(len(body)), **headers}.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except (ConnectionError, http.client.HTTPException) as exc:  # the proxy hung up: count it as a 400
        return 400, {}, str(exc).encode()
    finally:
        conn.close()


def check(status: int, headers: dict, body: bytes) -> None:
    assert status != 500, body[:300]
    if headers.get("request-id", "").startswith("agentmeter_"):  # agentmeter's own answer: provider-shaped
        err = json.loads(body)
        assert err["error"]["message"].startswith("agentmeter: ")
        assert 400 <= status < 600


bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.fixed_dictionaries(
        {
            "model": st.one_of(st.text(max_size=10), json_values),
            "stream": json_values,
            "max_tokens": json_values,
            "stream_options": json_values,
            "messages": json_values,
            "input": json_values,
        }
    ).map(lambda v: json.dumps(v).encode()),
)
odd_header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)


@examples(100, 3000)
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"]),
    tail=st.sampled_from(TAILS),
    body=bodies,
    encoding=st.sampled_from([None, "gzip", "zstd", "deflate", "br", "identity, gzip"]),
    extra=st.dictionaries(
        st.sampled_from(
            [
                "x-api-key",
                "authorization",
                "anthropic-beta",
                "session_id",
                "x-claude-code-session-id",
                "content-type",
                "x-stainless-retry-count",
            ]
        ),
        odd_header_values,
        max_size=3,
    ),
)
def test_random_requests_never_make_agentmeter_fail(target, method, tail, body, encoding, extra):
    stack, crashes = target
    TRIED["HTTP requests"] += 1
    headers = {"Content-Type": "application/json", **extra}
    if encoding:
        headers["Content-Encoding"] = encoding
    status, hdrs, out = send(
        stack, method, tail, body, {k: v.encode("latin-1").decode("latin-1") for k, v in headers.items()}
    )
    check(status, hdrs, out)
    assert crashes.records == [], [r.getMessage() for r in crashes.records]


def test_known_nasty_requests(target):
    stack, crashes = target
    deep = b"[" * 100_000 + b"]" * 100_000
    bomb = gzip.compress(b" " * (200 << 20), compresslevel=1)
    cases = [
        ("anthropic/v1/messages", deep, {}),
        ("anthropic/v1/messages", b'{"model":"claude-sonnet-4-5","messages":' + deep + b"}", {}),
        ("anthropic/v1/messages", b'{"model":"claude-sonnet-4-5","messages":5}', {}),
        ("openai/v1/responses", b'{"model":"gpt-5.1","input":5}', {}),
        ("openai/v1/chat/completions", b'{"model":"gpt-5.1","stream":true,"stream_options":5,"messages":7}', {}),
        ("openai/v1/chat/completions", '{"model":"x","stream":true,"messages":[]}'.encode("utf-16"), {}),
        ("anthropic/v1/messages", b'{"model":"claude-sonnet-4-5","max_tokens":' + b"9" * 5000 + b"}", {}),
        ("anthropic/v1/messages", b'{"model":"claude-sonnet-4-5","max_tokens":1e999,"messages":[]}', {}),
        ("anthropic/v1/messages", b'{"model":"claude-sonnet-4-5","max_tokens":-1,"messages":[]}', {}),
        ("anthropic/v1/messages", b"\xff\xfe\xfd not utf-8", {}),
        ("anthropic/v1/messages", bomb, {"Content-Encoding": "gzip"}),
        ("anthropic/v1/messages", b"garbage", {"Content-Encoding": "zstd"}),
        ("anthropic/v1/messages", b"{}", {"x-api-key": "k" * 60_000}),
    ]
    for tail, body, headers in cases:
        TRIED["HTTP requests (known nasty)"] += 1
        check(*send(stack, "POST", tail, body, {"Content-Type": "application/json", **headers}))
    for tail in ("anthropic/../x", "anthropic/v1/../../x", "anthropic/%2e%2e/x", "openai/v1/./responses"):
        status, _, _ = send(stack, "POST", tail, b"{}", {})
        assert status in (400, 404), (tail, status)  # never forwarded outside the provider's base path
    assert crashes.records == []


def test_raw_protocol_abuse(target):
    """What aiohttp's own parser rejects (a 4xx in plain text: no agentmeter code runs) or what the
    proxy answers; never a 500, never a hang."""
    stack, crashes = target
    tok = stack.session["token"]
    raws = [
        f"POST /s/{tok}/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked"
        "\r\n\r\n0\r\n\r\n",
        f"POST /s/{tok}/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        f"GET /s/{tok}/anthropic/v1/models?{'a' * 100_000} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"POST /s/{tok}/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        f"POST /s/{tok}/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nX-Evil: a\x00b\r\nContent-Length: 0\r\n\r\n",
        "GARBAGE\r\n\r\n",
        f"POST /s/{tok}/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\n" + "X-H: v\r\n" * 5000 + "\r\n",
    ]
    for raw in raws:
        TRIED["HTTP requests (raw protocol)"] += 1
        with socket.create_connection(("127.0.0.1", stack.state.port), timeout=10) as s:
            s.sendall(raw.encode("latin-1"))
            s.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
        assert status is None or status < 500, data[:200]
    assert crashes.records == []


def test_control_api_rejects_junk_without_a_500(target):
    stack, crashes = target
    auth = {"Authorization": "Bearer ctl", "Content-Type": "application/json"}
    sid = stack.loop.run(stack.state.sessions.open({"agent": "junk"}))["session_id"]  # this one gets ended
    junk = [
        b"[" * 100_000,
        b"{{{",
        b"[]",
        b'"x"',
        b"\xff",
        b'{"budget_usd":"abc"}',
        b'{"budget_usd":true}',
        b'{"until_ms":"x"}',
        b'{"until_ms":1e999}',
        b'{"until_ms":' + b"9" * 30 + b"}",
        b'{"exit_code":"x"}',
        b'{"exit_code":99999999999999999999}',
        b'{"tags":[1,2,3],"agent":{"a":1}}',
    ]
    for path in ("/_agentmeter/v1/sessions", f"/_agentmeter/v1/sessions/{sid}/end", "/_agentmeter/v1/snooze"):
        for body in junk:
            TRIED["control API requests"] += 1
            conn = http.client.HTTPConnection("127.0.0.1", stack.state.port, timeout=10)
            conn.request("POST", path, body=body, headers=auth)
            r = conn.getresponse()
            assert r.status in (200, 400, 404), (path, body[:30], r.status, r.read()[:200])
            conn.close()
    assert crashes.records == []


def test_websocket_junk_frames(target):
    stack, crashes = target
    url = f"http://127.0.0.1:{stack.state.port}/s/{stack.session['token']}/openai/v1/responses"

    async def go():
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(url) as ws:
                    for frame in (
                        "{",
                        "[" * 50_000,
                        '["response.create"]',
                        '{"type":"response.create","model":5}',
                        '{"type":"response.create","response":[1]}',
                        "\x00\xff",
                    ):
                        TRIED["WebSocket frames"] += 1
                        await ws.send_str(frame)
                    await ws.send_bytes(b"\xff\x00 garbage")
                    await asyncio.sleep(0.2)
            except aiohttp.WSServerHandshakeError as exc:  # the scripted upstream has no WebSocket: declined
                assert exc.status != 500

    asyncio.run(go())
    assert crashes.records == []
    assert send(stack, "GET", "anthropic/v1/models", b"", {})[0] != 500


def test_undecodable_header_bytes_and_lone_surrogates_still_get_their_row(target):
    stack, crashes = target
    mark = uuid.uuid4().hex
    odd = {"session_id": "caf\xe9-\xff", "x-claude-code-agent-id": "\xe9" * 5000}
    body = b'{"model":"claude-\\udcb9-' + mark.encode() + b'","max_tokens":5,"stream":true,"messages":[]}'
    status, _, out = send(stack, "POST", "anthropic/v1/messages", body, {"Content-Type": "application/json", **odd})
    assert status == 200 and b"message_stop" in out
    (row,) = [r for r in stack.rows() if (r["model_requested"] or "").endswith(mark)]
    assert row["status"] == "ok" and len(row["agent_id"]) <= 256  # a huge header is not copied into every row
    assert crashes.records == []
