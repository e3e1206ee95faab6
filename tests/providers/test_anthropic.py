import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmeter.core.models import Usage
from agentmeter.providers import sse
from agentmeter.providers.anthropic import AnthropicStreamMeter, parse_anthropic_json, usage_from_anthropic

STREAMS = Path(__file__).parent.parent / "fixtures" / "streams"
FIXTURES = [
    "anthropic_tool_use.sse",
    "anthropic_server_tool.sse",
    "anthropic_error.sse",
    "anthropic_unicode.sse",
]
EOLS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def load(name: str, eol: str = "lf") -> bytes:
    return (STREAMS / name).read_bytes().replace(b"\n", EOLS[eol])


def split(b: bytes, cuts) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(b)]
    return [b[i:j] for i, j in itertools.pairwise(points) if j > i]


def run(chunks):
    m = AnthropicStreamMeter()
    flags = [m.feed(c) for c in chunks]
    return m.result(), flags


def terminal_end(b: bytes) -> int:
    """Index just past the byte that completes the terminal event, found by feeding one byte at a time."""
    _, flags = run([b[i : i + 1] for i in range(len(b))])
    assert flags.count(True) == 1
    return flags.index(True) + 1


def ev(name: str, obj) -> bytes:
    return f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode()


START = ev(
    "message_start",
    {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 7}}},
)
STOP = ev("message_stop", {"type": "message_stop"})


def delta(usage, stop_reason=None) -> bytes:
    return ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": usage})


def test_claude_code_turn_exact_buckets():
    r, flags = run([load("anthropic_tool_use.sse")])
    assert flags == [True]
    assert r.usage == Usage(
        input_tokens=3,
        cache_read_tokens=18230,
        cache_write_tokens=1204,
        cache_write_5m_tokens=0,
        cache_write_1h_tokens=1204,
        output_tokens=58,
    )
    assert (r.model, r.response_id, r.stop_reason) == (
        "claude-sonnet-4-5-20250929",
        "msg_01XFDUDYJgAACzvnptvVoYEL",
        "tool_use",
    )
    assert r.complete and r.fault is None and r.error_type is None
    assert r.estimated_output_tokens == 0


def test_server_tool_use_counts_web_searches():
    r, _ = run([load("anthropic_server_tool.sse")])
    assert r.usage == Usage(input_tokens=10682, output_tokens=510, web_search_requests=1)
    assert r.stop_reason == "end_turn"


def test_mid_stream_error_is_terminal():
    r, flags = run([load("anthropic_error.sse")])
    assert flags == [True]
    assert r.complete
    assert (r.error_type, r.error_message) == ("overloaded_error", "Overloaded")
    assert r.usage == Usage(input_tokens=12, cache_read_tokens=4096, output_tokens=1)
    assert r.estimated_output_tokens > 0  # text was relayed before the error


def test_unicode_stream():
    r, _ = run([load("anthropic_unicode.sse")])
    assert r.usage == Usage(input_tokens=25, output_tokens=14)


@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("name", FIXTURES)
def test_one_byte_chunks(name, eol):
    b = load(name, eol)
    r, flags = run([b[i : i + 1] for i in range(len(b))])
    assert r == run([load(name)])[0]
    assert flags.count(True) == 1
    # LF: the last byte completes the event; CRLF: the CR of the final blank line does.
    assert flags.index(True) == len(b) - (2 if eol == "crlf" else 1)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("name", FIXTURES)
def test_any_chunking_same_result_and_terminal_once(name, eol, data):
    b = load(name, eol)
    cuts = data.draw(st.lists(st.integers(1, len(b) - 1), max_size=60))
    chunks = split(b, cuts)
    r, flags = run(chunks)
    assert r == run([load(name)])[0]
    assert flags.count(True) == 1
    i = flags.index(True)
    end = terminal_end(b)
    start = sum(len(c) for c in chunks[:i])
    assert start < end <= start + len(chunks[i])


def test_cumulative_message_delta_replaces_never_adds():
    r, _ = run([START, delta({"output_tokens": 10}), delta({"output_tokens": 58}, "end_turn"), STOP])
    assert r.usage.output_tokens == 58
    assert r.usage.input_tokens == 7  # kept from message_start
    assert r.stop_reason == "end_turn"


def test_null_in_delta_does_not_erase_message_start_value():
    r, _ = run([START, delta({"input_tokens": None, "output_tokens": 5}), STOP])
    assert r.usage == Usage(input_tokens=7, output_tokens=5)


def test_ping_comments_unknown_events_and_multiline_data_ignored_or_joined():
    stream = (
        START
        + b": keep-alive\n\n"
        + b'event: ping\ndata: {"type": "ping"}\n\n'
        + b'event: brand_new_event\ndata: {"type":"brand_new_event","usage":{"output_tokens":999}}\n\n'
        + b'event: message_delta\ndata: {"type":"message_delta",\ndata: "usage":{"output_tokens":12}}\n\n'
        + STOP
    )
    r, flags = run([stream])
    assert flags == [True]
    assert r.usage == Usage(input_tokens=7, output_tokens=12)


def test_stream_without_event_lines_is_sniffed():
    b = b"".join(line + b"\n" for line in load("anthropic_tool_use.sse").split(b"\n") if not line.startswith(b"event:"))
    assert run([b])[0] == run([load("anthropic_tool_use.sse")])[0]


@pytest.mark.parametrize("name", ["anthropic_tool_use.sse", "anthropic_unicode.sse"])
def test_truncated_stream_is_incomplete_with_estimate(name):
    b = load(name)
    cut = b.index(b"event: message_delta")
    r, flags = run([b[:cut]])
    assert flags == [False]
    assert not r.complete
    assert r.estimated_output_tokens > 0
    assert r.usage.input_tokens > 0  # message_start usage survives


def test_cut_mid_event_is_reported():
    b = load("anthropic_tool_use.sse")
    m = AnthropicStreamMeter()
    m.feed(b[:-5])
    assert m.truncated_mid_event and not m.result().complete


def test_invalid_json_in_usage_event_sets_fault_and_still_ends():
    stream = START + b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tok\n\n' + STOP
    r, flags = run([stream])
    assert flags == [True]
    assert r.fault and "message_delta" in r.fault
    assert r.usage == Usage(input_tokens=7)


def test_feed_after_terminal_returns_false():
    m = AnthropicStreamMeter()
    assert m.feed(START + STOP) is True
    assert m.feed(STOP) is False


def test_framing_failure_still_detects_terminal(monkeypatch):
    monkeypatch.setattr(sse, "MAX_EVENT_BYTES", 100)
    m = AnthropicStreamMeter()
    assert m.feed(b"<html>" + b"x" * 200) is False  # no blank line ever: the framer gives up
    assert m.feed(b"event: message_st") is False
    assert m.feed(b"op\ndata: {}\n\n") is True
    assert m.feed(b"more") is False
    assert "SSEOverflow" in m.result().fault


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64) | st.sampled_from([STOP, START, b"\r", b"\n\n", b"event: error\n"])))
def test_feed_never_raises(chunks):
    m = AnthropicStreamMeter()
    assert sum(m.feed(c) for c in chunks) <= 1
    m.result()


def test_usage_mapping_defaults_and_split():
    assert usage_from_anthropic({}) == Usage()
    assert usage_from_anthropic(None) == Usage()
    assert usage_from_anthropic({"input_tokens": None, "output_tokens": "x"}) == Usage()
    # No split object: every write is a 5-minute write.
    assert usage_from_anthropic({"cache_creation_input_tokens": 100}) == Usage(
        cache_write_tokens=100, cache_write_5m_tokens=100
    )
    u = usage_from_anthropic(
        {
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1},
        }
    )
    assert (u.cache_write_tokens, u.cache_write_5m_tokens, u.cache_write_1h_tokens) == (300, 100, 200)
    assert u.web_search_requests == 2


def test_parse_non_streamed_message():
    body = json.dumps(
        {
            "id": "msg_2",
            "type": "message",
            "model": "claude-haiku-4-5",
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 9, "cache_read_input_tokens": 100, "output_tokens": 4},
        }
    ).encode()
    r = parse_anthropic_json(body)
    assert r.usage == Usage(input_tokens=9, cache_read_tokens=100, output_tokens=4)
    assert (r.model, r.response_id, r.stop_reason, r.complete, r.fault) == (
        "claude-haiku-4-5",
        "msg_2",
        "end_turn",
        True,
        None,
    )


def test_parse_error_body():
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"},"request_id":"req_011C"}'
    r = parse_anthropic_json(body)
    assert (r.error_type, r.error_message, r.usage, r.fault) == ("rate_limit_error", "slow down", None, None)


@pytest.mark.parametrize("body", [b"", b"<html>502</html>", b"[1,2]", b'{"id":"msg_3"}', b"\xff\xfe"])
def test_parse_garbage_sets_fault(body):
    r = parse_anthropic_json(body)
    assert r.fault and r.usage is None


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("cut_at", [None, "event: message_delta"])
def test_one_event_per_chunk_counts_like_the_framer(name, cut_at):
    """Providers write one event per chunk; such delta chunks skip the framer (DELTA_EVENT_PREFIX). The
    result, the cut-short estimate included, must be what framing every event gives."""
    b = load(name)
    if cut_at:
        b = b[: b.index(cut_at.encode())] if cut_at.encode() in b else b
    events = [e + b"\n\n" for e in b.split(b"\n\n") if e]
    fast, flags = run(events)
    slow = AnthropicStreamMeter()
    slow.DELTA_EVENT_PREFIX = None
    assert [slow.feed(e) for e in events] == flags
    assert fast == slow.result()
    assert flags.count(True) == (0 if cut_at and cut_at.encode() in load(name) else 1)


def _relay_order(chunks) -> int:
    """Feeds the chunks as the relay does; returns how many chunks may_complete let go ahead of the meter. Fails
    if a chunk it let go ahead completes the terminal event (that chunk would reach the agent before its row)."""
    m = AnthropicStreamMeter()
    early = 0
    for c in chunks:
        ahead = not m.may_complete(c)
        ended = m.feed(c)
        assert not (ahead and ended), (c, chunks)
        early += ahead
    return early


NO_EVENT_LINES = b"".join(
    b"data: " + json.dumps(o).encode() + b"\n\n"
    for o in (
        {"type": "message_start", "message": {"id": "msg_2", "model": "claude-x", "usage": {"input_tokens": 3}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hello"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    )
)
STOP_NO_EVENT_LINE = b'data: {"type":"message_stop"}\n\n'


@pytest.mark.parametrize("eol", sorted(EOLS))
@pytest.mark.parametrize("name", FIXTURES)
def test_a_chunk_relayed_before_it_is_metered_never_ends_the_stream_any_single_cut(name, eol):
    b = load(name, eol)
    for i in range(1, len(b)):
        _relay_order([b[:i], b[i:]])
    assert _relay_order([b[i : i + 1] for i in range(len(b))]) > 0  # byte by byte: most bytes go ahead


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([*FIXTURES, "no-event-lines"]), st.sampled_from(sorted(EOLS)), st.data())
def test_a_chunk_relayed_before_it_is_metered_never_ends_the_stream(name, eol, data):
    b = NO_EVENT_LINES + STOP_NO_EVENT_LINE if name == "no-event-lines" else load(name)
    b = b.replace(b"\n", EOLS[eol])
    cuts = data.draw(st.lists(st.integers(1, len(b) - 1), max_size=12))
    _relay_order(split(b, cuts))


def test_the_chunks_a_provider_writes_go_ahead_of_the_meter_but_not_the_terminal_one():
    """One event per chunk, as the providers write them: every chunk but message_stop goes to the agent first."""
    events = [START, ev("content_block_delta", {"type": "content_block_delta", "delta": {"text": "hi"}})]
    events += [delta({"output_tokens": 1}, "end_turn"), STOP]
    m = AnthropicStreamMeter()
    ahead = []
    for e in events:
        ahead.append(not m.may_complete(e))
        m.feed(e)
    assert ahead == [True, True, True, False]
