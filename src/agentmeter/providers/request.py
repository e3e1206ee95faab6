"""Reading the facts of a request body (sans-io): which API, which model, streamed or not.

Bodies are decoded only to be read; unless agentmeter rewrites them, the original bytes go upstream.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass

_V1 = re.compile(r"^(?:v1/)+")  # AI-SDK clients put /v1 in their base URL and may double it


def classify(provider: str, tail: str) -> str:
    """The API a path belongs to: messages, count_tokens, responses, chat, models or other."""
    path = _V1.sub("", tail.strip("/"))
    if provider == "anthropic":
        if path == "messages":
            return "messages"
        if path == "messages/count_tokens":
            return "count_tokens"
    else:
        if path == "responses":
            return "responses"
        if path == "chat/completions":
            return "chat"
    if path == "models" or path.startswith("models/"):
        return "models"
    return "other"


# The decoded copy is only read, never sent; a body that inflates past this (a zip bomb) is not read at all.
MAX_DECODED = 128 * 2**20


def decode_body(body: bytes, content_encoding: str | None) -> bytes | None:
    """The plain bytes of a request body, or None when the encoding is unknown, corrupt or too large."""
    enc = (content_encoding or "identity").strip().lower()
    try:
        if enc in ("", "identity"):
            return body
        if enc == "gzip":
            return _inflate(body, 16 + zlib.MAX_WBITS)
        if enc == "deflate":
            try:
                return _inflate(body, zlib.MAX_WBITS)
            except zlib.error:
                return _inflate(body, -zlib.MAX_WBITS)
        if enc == "zstd":
            import zstandard

            # Codex frames may omit the content size; stream-decompress with a generous cap.
            reader = zstandard.ZstdDecompressor().stream_reader(body)
            out = bytearray()
            while chunk := reader.read(min(1 << 20, MAX_DECODED + 1 - len(out))):
                out += chunk
                if len(out) > MAX_DECODED:
                    return None
            return bytes(out)
    except Exception:
        return None
    return None


def _inflate(body: bytes, wbits: int) -> bytes | None:
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, MAX_DECODED + 1)
    return None if len(out) > MAX_DECODED else out


@dataclass(frozen=True, slots=True)
class BodyFacts:
    model: str | None = None
    stream: bool = False
    include_usage: bool = False
    has_stream_options: bool = False
    parsed: dict | None = None


def read_body(plain: bytes | None) -> BodyFacts:
    if not plain:
        return BodyFacts()
    try:
        data = json.loads(plain)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly nested JSON
        return BodyFacts()
    if not isinstance(data, dict):
        return BodyFacts()
    model = data.get("model")
    opts = data.get("stream_options")
    return BodyFacts(
        model=model if isinstance(model, str) else None,
        stream=data.get("stream") is True,
        include_usage=isinstance(opts, dict) and opts.get("include_usage") is True,
        has_stream_options="stream_options" in data,
        parsed=data,
    )


def inject_include_usage(plain: bytes, facts: BodyFacts) -> bytes:
    """Ask a Chat Completions upstream for the final usage chunk, changing as few bytes as possible."""
    if not facts.has_stream_options and plain.lstrip()[:1] == b"{":  # not for UTF-16/32 JSON (BOM first)
        start = plain.index(b"{") + 1
        return plain[:start] + b'"stream_options":{"include_usage":true},' + plain[start:]
    data = dict(facts.parsed or {})
    opts = data.get("stream_options")
    data["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
