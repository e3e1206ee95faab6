"""The sans-io parsers on hostile bytes: no exception, no hang, and the relay's byte accounting holds."""

from __future__ import annotations

import itertools
import json
import time

from hypothesis import given
from hypothesis import strategies as st

from agentmeter.providers import anthropic as anth
from agentmeter.providers import openai as oai
from agentmeter.providers.request import BodyFacts, classify, decode_body, inject_include_usage, read_body
from agentmeter.providers.sse import SSEFramer
from agentmeter.proxy.websocket import _any_create, _json_or_none, _model_of

from .conftest import TRIED, examples

METERS = (anth.AnthropicStreamMeter, oai.ResponsesStreamMeter, oai.ChatStreamMeter)
KEYS = [
    "type",
    "usage",
    "message",
    "response",
    "model",
    "id",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation",
    "ephemeral_1h_input_tokens",
    "prompt_tokens",
    "completion_tokens",
    "input_tokens_details",
    "cached_tokens",
    "output_tokens_details",
    "reasoning_tokens",
    "choices",
    "delta",
    "error",
    "code",
    "status",
    "incomplete_details",
    "stop_reason",
    "finish_reason",
    "server_tool_use",
    "messages",
    "input",
    "stream",
    "stream_options",
    "include_usage",
    "max_tokens",
    "role",
    "content",
    "tool_result",
    "is_error",
    "system",
    "tools",
]
EVENTS = [
    b"message_start",
    b"message_delta",
    b"message_stop",
    b"content_block_delta",
    b"ping",
    b"error",
    b"response.created",
    b"response.completed",
    b"response.incomplete",
    b"response.failed",
    b"response.output_text.delta",
    b"x",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["message_start", "message_delta", "response.completed", "[DONE]", "error"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)),
    max_leaves=25,
)


@st.composite
def sse_streams(draw) -> bytes:
    """Streams that look like the providers' (event names, JSON data, odd line endings) but are not."""
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            parts.append(draw(st.binary(max_size=60)))
        elif kind == 1:
            parts.append(b": keep-alive" + eol + eol)
        else:
            data = json.dumps(draw(json_values)).encode() if kind < 8 else draw(st.binary(max_size=40))
            name = draw(st.sampled_from(EVENTS)) if draw(st.booleans()) else None
            head = b"event: " + name + eol if name else b""
            parts.append(head + b"data: " + data + eol + eol)
    if draw(st.booleans()):
        parts.append(
            draw(
                st.sampled_from(
                    [
                        b"data: [DONE]\n\n",
                        b"event: message_stop\ndata: {}\n\n",
                        b'event: response.completed\ndata: {"type":"response.completed"}\n\n',
                    ]
                )
            )
        )
    return b"".join(parts)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


streams = st.one_of(sse_streams(), st.binary(max_size=400))


@examples(200, 20000)
@given(streams, st.lists(st.integers(0, 10_000), max_size=8))
def test_stream_meters_never_raise_and_report_terminal_once(data, cuts):
    TRIED["stream meters"] += 1
    for meter_cls in METERS:
        m = meter_cls()
        terminal = [m.feed(c) for c in chunked(data, cuts)]
        assert sum(terminal) <= 1
        r = m.result()
        assert r.estimated_output_tokens >= 0
        if r.usage is not None:
            assert min(r.usage.as_dict().values()) >= 0


@examples(200, 20000)
@given(streams, st.lists(st.integers(0, 10_000), max_size=8))
def test_framer_raw_mode_accounts_for_every_byte(data, cuts):
    TRIED["SSE framer"] += 1
    f = SSEFramer(raw=True)
    out = b"".join(raw for c in chunked(data, cuts) for _, raw in f.feed_raw(c))
    assert out + f.take_rest() == data
    g = SSEFramer()
    events = [ev for c in chunked(data, cuts) for ev in g.feed(c)]
    assert events == SSEFramer().feed(data)  # chunking never changes what is read


@examples(200, 20000)
@given(streams, st.lists(st.integers(0, 10_000), max_size=8))
def test_usage_stripper_relays_every_byte_but_the_injected_chunk(data, cuts):
    TRIED["chat usage stripper"] += 1
    s = oai.ChatUsageStripper()
    out = b"".join(s.process(c) for c in chunked(data, cuts)) + s.flush()
    if s.stripped == 0:
        assert out == data
    else:
        assert len(out) < len(data)


@examples(150, 10000)
@given(st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
def test_whole_body_parsers_never_raise(body):
    TRIED["JSON body parsers"] += 1
    for parse in (anth.parse_anthropic_json, oai.parse_responses_json, oai.parse_chat_json):
        r = parse(body)
        assert r.fault or r.complete or r.usage is None
    anth.usage_from_anthropic(_loads(body))
    oai.usage_from_openai(_loads(body))
    m = oai.ResponsesFrameMeter()
    m.feed_text(body.decode(errors="replace"))
    m.result()


@examples(150, 10000)
@given(
    st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
    st.sampled_from([None, "identity", "gzip", "deflate", "zstd", "br", "gzip, gzip", "", "GZIP "]),
    st.text(max_size=40),
)
def test_request_readers_never_raise(body, encoding, tail):
    TRIED["request readers"] += 1
    plain = decode_body(body, encoding)
    facts = read_body(plain)
    if facts.parsed is not None and facts.stream and not facts.include_usage:
        injected = inject_include_usage(plain, facts)
        assert json.loads(injected)["stream_options"]["include_usage"] is True
    classify("anthropic", tail)
    classify("openai", tail)
    text = body.decode(errors="replace")
    _model_of(_json_or_none(text) or {})
    _any_create(text)


_FACT_KEYS = [
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "max_output_tokens",
    "max_completion_tokens",
    "messages",
    "input",
    "system",
    "tools",
]
request_objects = st.dictionaries(st.sampled_from(_FACT_KEYS) | st.text(max_size=8), json_values, max_size=8)


@examples(150, 5000)
@given(request_objects, st.booleans())
def test_partial_decoder_reads_what_a_full_parse_reads(obj, spaced):
    """read_body's fast decoder reads only a few fields; whatever it takes must give the facts a full
    json.loads gives (the fallback it uses for everything else)."""
    TRIED["request readers"] += 1
    plain = json.dumps(obj, separators=(", ", ": ") if spaced else (",", ":")).encode()
    fast = read_body(plain)
    full = BodyFacts(plain, json.loads(plain))
    for name in (
        "ok",
        "model",
        "stream",
        "include_usage",
        "has_stream_options",
        "max_tokens",
        "items",
        "input_is_text",
        "n_items",
    ):
        assert getattr(fast, name) == getattr(full, name), name
    if fast.input_is_text:
        assert fast.last_item == full.last_item
    elif full.last_item is not None:
        assert json.loads(fast.last_item) == json.loads(full.last_item)
    assert json.dumps(fast.parsed) == json.dumps(obj)  # (NaN is not equal to itself)


def _meter_all(data: bytes) -> float:
    """CPU seconds of this thread (robust to a busy machine, unlike the wall clock)."""
    t0 = time.thread_time()
    for meter_cls in METERS:
        m = meter_cls()
        for i in range(0, len(data), 65536):
            m.feed(data[i : i + 65536])
        m.result()
    s = oai.ChatUsageStripper()
    for i in range(0, len(data), 65536):
        s.process(data[i : i + 65536])
    s.flush()
    return time.thread_time() - t0


def test_pathological_inputs_take_linear_time():
    """Shapes that make naive parsers quadratic or recursive: 16x the input must cost about 16x the CPU
    time, and 512 KB of the worst of them stays well under a second per parser."""
    shapes = {
        "no blank line": lambda n: b"data: " + b"x" * n,
        "only CRs (every pair a blank line)": lambda n: b"\r" * n,
        "single newlines": lambda n: b"data: x\n" * (n // 8),
        "empty events": lambda n: b"data:\n\n" * (n // 7),
        "deep JSON in a usage event": lambda n: b"event: message_delta\ndata: " + b"[" * n + b"\n\n",
        "huge numbers": lambda n: b'event: message_delta\ndata: {"usage":{"output_tokens":' + b"9" * n + b"}}\n\n",
    }
    for name, make in shapes.items():
        TRIED["pathological streams"] += 2
        small, big = _meter_all(make(32 << 10)), _meter_all(make(512 << 10))
        assert big < 5, (name, big)
        # 16x the bytes: linear costs ~16x, quadratic ~256x; allow 3x per byte for caches and the GC.
        assert big < 48 * max(small, 0.002), (name, small, big)
    assert read_body(b"[" * 1_000_000).parsed is None  # absurd nesting: unread, never a RecursionError


def _loads(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None
