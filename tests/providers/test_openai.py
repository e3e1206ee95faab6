import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmeter.core.models import Usage
from agentmeter.providers.openai import (
    ChatStreamMeter,
    ChatUsageStripper,
    ResponsesFrameMeter,
    ResponsesStreamMeter,
    parse_chat_json,
    parse_responses_json,
    usage_from_openai,
)
from agentmeter.providers.sse import SSEFramer

STREAMS = Path(__file__).parent.parent / "fixtures" / "streams"
RESPONSES = ["responses_codex.sse", "responses_incomplete.sse", "responses_failed.sse"]
CHAT = ["chat_include_usage.sse", "chat_unicode.sse"]
EOLS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def load(name: str, eol: str = "lf") -> bytes:
    return (STREAMS / name).read_bytes().replace(b"\n", EOLS[eol])


def split(b: bytes, cuts) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(b)]
    return [b[i:j] for i, j in itertools.pairwise(points) if j > i]


def meter_for(name: str):
    return ResponsesStreamMeter if name.startswith("responses") else ChatStreamMeter


def run(cls, chunks):
    m = cls()
    flags = [m.feed(c) for c in chunks]
    return m.result(), flags


def chat_chunk(**fields) -> bytes:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4.1-mini", "usage": None}
    return b"data: " + json.dumps({**base, **fields}).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


# -- usage mapping -------------------------------------------------------------------------------------


def test_usage_responses_shape():
    u = usage_from_openai(
        {
            "input_tokens": 12810,
            "input_tokens_details": {"cached_tokens": 11776},
            "output_tokens": 214,
            "output_tokens_details": {"reasoning_tokens": 192},
            "total_tokens": 13024,
        }
    )
    assert u == Usage(input_tokens=1034, cache_read_tokens=11776, output_tokens=214, reasoning_tokens=192)


def test_usage_chat_shape():
    u = usage_from_openai(
        {"prompt_tokens": 1117, "completion_tokens": 46, "prompt_tokens_details": {"cached_tokens": 1024}}
    )
    assert u == Usage(input_tokens=93, cache_read_tokens=1024, output_tokens=46)


def test_usage_cache_write_is_excluded_from_uncached_input():
    u = usage_from_openai(
        {"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 300}}
    )
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens) == (100, 600, 300)
    assert u.cache_write_5m_tokens + u.cache_write_1h_tokens == u.cache_write_tokens
    assert u.prompt_tokens == 1000


def test_usage_missing_and_null_fields():
    assert usage_from_openai({}) == Usage()
    assert usage_from_openai({"prompt_tokens": None, "prompt_tokens_details": None}) == Usage()


# -- Responses -----------------------------------------------------------------------------------------


def test_codex_turn_exact_buckets():
    r, flags = run(ResponsesStreamMeter, [load("responses_codex.sse")])
    assert flags == [True]
    assert r.usage == Usage(input_tokens=1034, cache_read_tokens=11776, output_tokens=214, reasoning_tokens=192)
    assert (r.model, r.response_id, r.stop_reason) == ("gpt-5-codex", "resp_68b0c1d2e3f4a5b6", "completed")
    assert r.complete and r.fault is None and r.error_type is None and r.estimated_output_tokens == 0


def test_response_incomplete_is_terminal_with_usage():
    r, flags = run(ResponsesStreamMeter, [load("responses_incomplete.sse")])
    assert flags == [True]
    assert r.usage == Usage(input_tokens=900, output_tokens=4096, reasoning_tokens=4000)
    assert r.stop_reason == "max_output_tokens" and r.error_type is None


def test_response_failed_sets_error_without_usage():
    r, flags = run(ResponsesStreamMeter, [load("responses_failed.sse")])
    assert flags == [True]
    assert r.complete and r.usage is None and r.fault is None
    assert r.error_type == "rate_limit_exceeded"
    assert "try again in 11.054s" in r.error_message


def test_bare_error_event():
    stream = b'event: error\ndata: {"type":"error","code":"server_error","message":"boom","param":null}\n\n'
    r, flags = run(ResponsesStreamMeter, [stream])
    assert flags == [False]
    assert (r.error_type, r.error_message, r.complete) == ("server_error", "boom", False)


def test_truncated_responses_stream():
    b = load("responses_codex.sse")
    r, flags = run(ResponsesStreamMeter, [b[: b.index(b"event: response.completed")]])
    assert flags == [False]
    assert not r.complete and r.usage is None
    assert r.model == "gpt-5-codex"
    assert r.estimated_output_tokens > 0


def test_invalid_json_in_terminal_event_faults_but_ends():
    stream = b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":\n\n'
    r, flags = run(ResponsesStreamMeter, [stream])
    assert flags == [True]
    assert r.complete and r.usage is None
    assert "response.completed" in r.fault


def test_completed_without_usage_is_a_fault():
    stream = b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":null}}\n\n'
    assert run(ResponsesStreamMeter, [stream])[0].fault == "no usage in response.completed"


def test_responses_without_event_lines_are_sniffed():
    b = b"".join(line + b"\n" for line in load("responses_codex.sse").split(b"\n") if not line.startswith(b"event:"))
    assert run(ResponsesStreamMeter, [b])[0] == run(ResponsesStreamMeter, [load("responses_codex.sse")])[0]


@pytest.mark.parametrize("name", RESPONSES)
def test_websocket_frames_same_as_sse(name):
    frames = [ev.data.decode() for ev in SSEFramer().feed(load(name))]
    m = ResponsesFrameMeter()
    flags = [m.feed_text(f) for f in frames]
    assert flags == [False] * (len(frames) - 1) + [True]
    assert m.feed_text(frames[-1]) is False
    assert m.result() == run(ResponsesStreamMeter, [load(name)])[0]


def test_websocket_nested_error_frame():
    m = ResponsesFrameMeter()
    m.feed_text('{"type":"error","status":429,"error":{"type":"usage_limit_reached","message":"limit"}}')
    assert (m.result().error_type, m.result().error_message) == ("usage_limit_reached", "limit")


def test_websocket_garbage_frame_does_not_raise():
    m = ResponsesFrameMeter()
    assert m.feed_text("not json") is False
    assert m.feed(b"\xff\x00") is False
    assert m.result().fault is None  # unknown frames are ignored, like unknown events


# -- Chat ----------------------------------------------------------------------------------------------


def test_chat_exact_buckets():
    r, flags = run(ChatStreamMeter, [load("chat_include_usage.sse")])
    assert flags == [True]
    assert r.usage == Usage(input_tokens=93, cache_read_tokens=1024, output_tokens=46)
    assert (r.model, r.response_id, r.stop_reason) == (
        "gpt-4.1-2025-04-14",
        "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "stop",
    )
    assert r.complete and r.fault is None and r.estimated_output_tokens == 0


def test_chat_usage_on_last_content_chunk():
    stream = (
        chat_chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}])
        + chat_chunk(
            choices=[{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
            usage={"prompt_tokens": 10, "completion_tokens": 1},
        )
        + DONE
    )
    r, _ = run(ChatStreamMeter, [stream])
    assert r.usage == Usage(input_tokens=10, output_tokens=1)
    assert r.stop_reason == "stop"


def test_chat_without_include_usage_completes_with_estimate():
    stream = (
        chat_chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}])
        + b"".join(chat_chunk(choices=[{"index": 0, "delta": {"content": w}}]) for w in ["Hel", "lo", " there"])
        + DONE
    )
    r, flags = run(ChatStreamMeter, [stream])
    assert flags == [True]
    assert r.complete and r.usage is None
    assert r.estimated_output_tokens == 3  # one token per content chunk; the role chunk adds nothing


@pytest.mark.parametrize("name", CHAT)
def test_truncated_chat_stream(name):
    b = load(name)
    r, flags = run(ChatStreamMeter, [b[: b.index(b'"choices":[]')]])
    assert not any(flags)
    assert not r.complete and r.usage is None and r.estimated_output_tokens > 0


def test_invalid_json_in_usage_chunk_faults():
    stream = chat_chunk(choices=[]) + b'data: {"choices":[],"usage":{"prompt_tokens":1\n\n' + DONE
    r, flags = run(ChatStreamMeter, [stream])
    assert flags == [True]
    assert r.fault == "invalid JSON in a usage chunk"


def test_chat_error_chunk():
    r, _ = run(ChatStreamMeter, [b'data: {"error":{"type":"server_error","message":"oops"}}\n\n'])
    assert (r.error_type, r.error_message) == ("server_error", "oops")


# -- any chunking ----------------------------------------------------------------------------------------


def terminal_end(cls, b: bytes) -> int:
    _, flags = run(cls, [b[i : i + 1] for i in range(len(b))])
    assert flags.count(True) == 1
    return flags.index(True) + 1


@settings(max_examples=40, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("name", RESPONSES + CHAT)
def test_any_chunking_same_result_and_terminal_once(name, eol, data):
    cls = meter_for(name)
    b = load(name, eol)
    cuts = data.draw(st.lists(st.integers(1, len(b) - 1), max_size=60))
    chunks = split(b, cuts)
    r, flags = run(cls, chunks)
    assert r == run(cls, [load(name)])[0]
    assert flags.count(True) == 1
    i = flags.index(True)
    start = sum(len(c) for c in chunks[:i])
    assert start < terminal_end(cls, b) <= start + len(chunks[i])


@pytest.mark.parametrize("name", RESPONSES + CHAT)
def test_terminal_is_the_last_byte(name):
    b = load(name)
    assert terminal_end(meter_for(name), b) == len(b)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64) | st.sampled_from([DONE, b"data: {\n\n", b'"usage":{', b"\r"])))
def test_feed_never_raises(chunks):
    for cls in (ChatStreamMeter, ResponsesStreamMeter):
        m = cls()
        assert sum(m.feed(c) for c in chunks) <= 1
        m.result()


# -- usage stripper ------------------------------------------------------------------------------------


def usage_event(b: bytes) -> bytes:
    """The raw bytes of the injected usage-only event, blank line included."""
    start = b.rindex(b"data: ", 0, b.index(b'"choices":[]'))
    return b[start : b.index(b"data: [DONE]")]


def strip_all(chunks) -> bytes:
    s = ChatUsageStripper()
    return b"".join(s.process(c) for c in chunks) + s.flush()


@pytest.mark.parametrize("name", CHAT)
def test_stripper_removes_exactly_the_usage_chunk(name):
    b = load(name)
    out = strip_all([b])
    assert out == b.replace(usage_event(b), b"")
    assert b'"choices":[]' not in out and out.endswith(DONE)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("name", CHAT)
def test_stripper_any_chunking(name, eol, data):
    b = load(name, eol)
    cuts = data.draw(st.lists(st.integers(1, len(b) - 1), max_size=60))
    expected = b.replace(usage_event(load(name)).replace(b"\n", EOLS[eol]), b"")
    assert strip_all(split(b, cuts)) == expected


def test_stripper_relays_each_event_when_complete():
    s = ChatUsageStripper()
    first = chat_chunk(choices=[{"index": 0, "delta": {"content": "a"}}])
    assert s.process(first[:-1]) == b""  # held back until the blank line
    assert s.process(first[-1:] + b"data: {") == first
    assert s.flush() == b"data: {"


def test_stripper_keeps_usage_on_a_content_chunk_and_other_streams():
    content_usage = chat_chunk(choices=[{"index": 0, "delta": {"content": "x"}}], usage={"prompt_tokens": 1})
    stream = b": comment\n\n" + content_usage + DONE
    assert strip_all([stream]) == stream
    assert strip_all([load("responses_codex.sse")]) == load("responses_codex.sse")


def test_stripper_drops_unterminated_usage_chunk_at_eof():
    b = load("chat_include_usage.sse")
    truncated = b[: b.index(b"data: [DONE]") - 2]  # usage chunk without its blank line
    assert strip_all([truncated]) == truncated.replace(usage_event(b)[:-2], b"")


# -- non-streamed --------------------------------------------------------------------------------------


def test_parse_responses_json():
    body = json.dumps(
        {
            "id": "resp_1",
            "object": "response",
            "status": "completed",
            "model": "gpt-5",
            "error": None,
            "incomplete_details": None,
            "usage": {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 9},
        }
    ).encode()
    r = parse_responses_json(body)
    assert r.usage == Usage(input_tokens=30, cache_read_tokens=20, output_tokens=9)
    assert (r.model, r.response_id, r.complete, r.error_type, r.fault) == (
        "gpt-5",
        "resp_1",
        True,
        None,
        None,
    )


def test_parse_chat_json():
    body = json.dumps(
        {
            "id": "chatcmpl-9",
            "object": "chat.completion",
            "model": "gpt-4.1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 2},
        }
    ).encode()
    r = parse_chat_json(body)
    assert r.usage == Usage(input_tokens=12, output_tokens=2)
    assert (r.model, r.stop_reason, r.fault) == ("gpt-4.1", "stop", None)


@pytest.mark.parametrize("parse", [parse_responses_json, parse_chat_json])
@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (
            b'{"error":{"message":"slow","type":"tokens","param":null,"code":"rate_limit_exceeded"}}',
            "rate_limit_exceeded",
        ),
        (
            b'{"error":{"type":"usage_limit_reached","plan_type":"plus","resets_at":1757000000}}',
            "usage_limit_reached",
        ),
    ],
)
def test_parse_error_bodies(parse, body, error_type):
    r = parse(body)
    assert r.error_type == error_type and r.usage is None and r.fault is None


@pytest.mark.parametrize("parse", [parse_responses_json, parse_chat_json])
@pytest.mark.parametrize("body", [b"", b"<html>", b"null", b"\xff"])
def test_parse_garbage_sets_fault(parse, body):
    assert parse(body).fault


@pytest.mark.parametrize("name", RESPONSES)
@pytest.mark.parametrize("truncate", [False, True])
def test_responses_one_event_per_chunk_counts_like_the_framer(name, truncate):
    """Output-text deltas written one per chunk skip the framer (DELTA_EVENT_PREFIX): same result, the
    cut-short estimate included, as framing every event."""
    events = [e + b"\n\n" for e in load(name).split(b"\n\n") if e]
    deltas = [i for i, e in enumerate(events) if e.startswith(ResponsesStreamMeter.DELTA_EVENT_PREFIX)]
    assert deltas or name == "responses_failed.sse"
    if truncate:
        events = events[: deltas[-1] + 1 if deltas else len(events) // 2]  # cut right after a delta
    fast, flags = run(ResponsesStreamMeter, events)
    slow = ResponsesStreamMeter()
    slow.DELTA_EVENT_PREFIX = None
    assert [slow.feed(e) for e in events] == flags
    assert fast == slow.result()
