"""Gemini API usage, sans-io: the buckets of DESIGN section 9, any chunking of a stream gives the same
usage, the JSON-array stream, and a stream cut short."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from agentmeter.providers.gemini import (
    GeminiStreamMeter,
    JsonArrayStream,
    parse_gemini_json,
    parse_path,
    usage_from_gemini,
    with_model,
)

META = {
    "promptTokenCount": 1000,
    "cachedContentTokenCount": 300,
    "candidatesTokenCount": 50,
    "thoughtsTokenCount": 40,
    "toolUsePromptTokenCount": 5,
    "totalTokenCount": 1095,
}
CHUNKS = [
    {
        "candidates": [{"content": {"parts": [{"text": 'He said "{['}], "role": "model"}}],
        "usageMetadata": {"promptTokenCount": 1000},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
    },
    {
        "candidates": [{"content": {"parts": [{"text": "llo"}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": META,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
    },
]
SSE = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in CHUNKS)
ARRAY = b"[" + b"\r\n,".join(json.dumps(c).encode() for c in CHUNKS) + b"]"


def test_buckets():
    u = usage_from_gemini(META)
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens, u.reasoning_tokens) == (
        705,
        300,
        0,
        90,
        40,
    )


def test_paths():
    assert parse_path("v1beta/models/gemini-2.5-pro:streamGenerateContent") == (
        "generate_content",
        "gemini-2.5-pro",
        True,
    )
    assert parse_path("v1beta/models/gemini-2.5-pro:generateContent") == ("generate_content", "gemini-2.5-pro", False)
    assert parse_path("v1beta/models/gemini-2.5-pro:countTokens")[0] == "count_tokens"
    assert parse_path("v1beta/models")[0] == "models"
    assert with_model("v1beta/models/gemini-2.5-pro:generateContent", "gemini-2.5-flash") == (
        "v1beta/models/gemini-2.5-flash:generateContent"
    )


@given(st.lists(st.integers(min_value=1, max_value=len(SSE) - 1), max_size=12))
def test_any_chunking_of_the_sse_stream_gives_the_same_usage(cuts):
    m = GeminiStreamMeter()
    points = sorted(set(cuts))
    done = [m.feed(SSE[a:b]) for a, b in zip([0, *points], [*points, len(SSE)], strict=True)]
    assert done.count(True) == 1
    r = m.result()
    assert r.complete and r.usage == usage_from_gemini(META) and r.model == "gemini-2.5-flash"
    assert r.stop_reason == "STOP"


@given(st.lists(st.integers(min_value=1, max_value=len(ARRAY) - 1), max_size=12))
def test_any_chunking_of_the_json_array_stream_gives_every_element(cuts):
    s = JsonArrayStream()
    points = sorted(set(cuts))
    got = []
    for a, b in zip([0, *points], [*points, len(ARRAY)], strict=True):
        got += s.feed(ARRAY[a:b])
    assert got == CHUNKS


def test_whole_bodies_and_a_cut_array():
    assert parse_gemini_json(ARRAY).usage == usage_from_gemini(META)
    assert parse_gemini_json(json.dumps(CHUNKS[1]).encode()).usage == usage_from_gemini(META)
    cut = parse_gemini_json(ARRAY[: ARRAY.index(b"\r\n,") + 10])
    assert not cut.complete and cut.estimated_output_tokens > 0
    err = parse_gemini_json(b'{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota"}}')
    assert err.error_type == "RESOURCE_EXHAUSTED" and err.usage is None
    assert parse_gemini_json(b'{"totalTokens": 12}').usage is None


def test_a_stream_cut_short_estimates_output():
    m = GeminiStreamMeter()
    m.feed(b"data: " + json.dumps(CHUNKS[0]).encode() + b"\r\n\r\n")
    r = m.result()
    assert not r.complete and r.estimated_output_tokens > 0
