import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmeter.providers import sse
from agentmeter.providers.sse import SSEEvent, SSEFramer, SSEOverflow, parse_block

STREAMS = Path(__file__).parent.parent / "fixtures" / "streams"
FIXTURES = sorted(p.name for p in STREAMS.glob("*.sse"))
EOLS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def load(name: str, eol: str = "lf") -> bytes:
    return (STREAMS / name).read_bytes().replace(b"\n", EOLS[eol])


def split(b: bytes, cuts) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(b)]
    return [b[i:j] for i, j in itertools.pairwise(points) if j > i]


def frame(chunks) -> list[SSEEvent]:
    f = SSEFramer()
    return [ev for c in chunks for ev in f.feed(c)]


def test_fixtures_present():
    assert len(FIXTURES) >= 9


def test_anthropic_fixture_events():
    events = frame([load("anthropic_tool_use.sse")])
    assert [e.event for e in events] == [
        b"message_start",
        b"content_block_start",
        b"ping",
        b"content_block_delta",
        b"content_block_stop",
        b"content_block_start",
        b"content_block_delta",
        b"content_block_delta",
        b"content_block_stop",
        b"message_delta",
        b"message_stop",
    ]
    assert events[-1].data == b'{"type":"message_stop"}'


def test_data_only_stream_has_no_event_names():
    events = frame([load("chat_include_usage.sse")])
    assert [e.event for e in events] == [None] * 5
    assert events[-1].data == b"[DONE]"


@pytest.mark.parametrize("eol", ["crlf", "cr"])
@pytest.mark.parametrize("name", FIXTURES)
def test_crlf_and_cr_framing_equal_lf(name, eol):
    assert frame([load(name, eol)]) == frame([load(name)])


@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("name", FIXTURES)
def test_one_byte_chunks(name, eol):
    b = load(name, eol)
    assert frame([b[i : i + 1] for i in range(len(b))]) == frame([load(name)])


@settings(max_examples=40, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("name", FIXTURES)
def test_any_chunking_gives_same_events(name, eol, data):
    b = load(name, eol)
    cuts = data.draw(st.lists(st.integers(1, len(b) - 1), max_size=60))
    assert frame(split(b, cuts)) == frame([load(name)])


def test_crlf_split_between_cr_and_lf():
    f = SSEFramer()
    assert f.feed(b"data: a\r\n\r") == [SSEEvent(None, b"a")]  # the CR already ends the blank line
    assert f.feed(b"\ndata: b\r") == []
    assert f.feed(b"\n\r\n") == [SSEEvent(None, b"b")]
    assert f.buffered == 0


def test_mixed_line_endings():
    assert frame([b"event: x\r\ndata: 1\n\rdata: 2\r\r\n"]) == [SSEEvent(b"x", b"1"), SSEEvent(None, b"2")]


def test_multi_line_data_joined_with_lf():
    assert frame([b'event: e\ndata: {"a":\ndata: 1}\n\n']) == [SSEEvent(b"e", b'{"a":\n1}')]


def test_comments_id_retry_and_unknown_fields_ignored():
    stream = b": keep-alive\n\n:another\nid: 7\nretry: 100\nfoo: bar\ndata: x\n\n"
    assert frame([stream]) == [SSEEvent(None, b"x")]


def test_only_one_space_after_colon_is_stripped():
    assert frame([b"data:x\n\ndata:  y\n\ndata\n\n"]) == [
        SSEEvent(None, b"x"),
        SSEEvent(None, b" y"),
        SSEEvent(None, b""),  # a field name alone is a field with an empty value
    ]


def test_event_without_data_is_not_dispatched():
    assert frame([b"event: ping\n\n\n\n"]) == []


def test_multibyte_utf8_split_is_kept_as_bytes():
    text = "héllo ✓ 日本".encode()
    stream = b"data: " + text + b"\n\n"
    cut = stream.index(b"\xe2") + 1  # inside the check mark
    assert frame([stream[:cut], stream[cut:]]) == [SSEEvent(None, text)]


def test_flush_returns_unterminated_event_without_dispatching_it():
    f = SSEFramer()
    assert f.feed(b"data: 1\n\nevent: message_stop\ndata: {}\n") == [SSEEvent(None, b"1")]
    assert f.buffered > 0
    assert f.flush() == SSEEvent(b"message_stop", b"{}")
    assert f.buffered == 0
    assert f.flush() is None


def test_parse_block():
    assert parse_block(b"event: a\r\ndata: 1\rdata: 2") == SSEEvent(b"a", b"1\n2")
    assert parse_block(b": only a comment") is None


def test_overflow_raises(monkeypatch):
    monkeypatch.setattr(sse, "MAX_EVENT_BYTES", 100)
    f = SSEFramer()
    f.feed(b"data: " + b"x" * 50)
    with pytest.raises(SSEOverflow):
        f.feed(b"x" * 60)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("name", ["chat_include_usage.sse", "anthropic_unicode.sse"])
def test_raw_mode_accounts_for_every_byte(name, eol, data):
    b = load(name, eol)
    cuts = data.draw(st.lists(st.integers(1, len(b) - 1), max_size=60))
    f = SSEFramer(raw=True)
    pieces = [p for c in split(b, cuts) for p in f.feed_raw(c)]
    assert b"".join(raw for _, raw in pieces) + f.take_rest() == b
    events = [ev for block, _ in pieces if (ev := parse_block(block)) is not None]
    assert events == frame([load(name)])[: len(events)]


def test_raw_mode_holds_a_trailing_cr_until_the_next_byte():
    f = SSEFramer(raw=True)
    assert f.feed_raw(b"data: a\r\n\r") == []
    assert f.feed_raw(b"\nda") == [(b"data: a", b"data: a\r\n\r\n")]
    assert f.take_rest() == b"da"
