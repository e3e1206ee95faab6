"""Reading the facts of a request body (sans-io): which API, which model, streamed or not.

Bodies are decoded only to be read; unless agentmeter rewrites them, the original bytes go upstream.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

import msgspec

_V1 = re.compile(r"^(?:v1/)+")  # AI-SDK clients put /v1 in their base URL and may double it


def classify(provider: str, tail: str) -> str:
    """The API a path belongs to: messages, count_tokens, responses, chat, models or other."""
    if provider == "gemini":
        from .gemini import parse_path

        return parse_path(tail)[0]
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


# POST routes that cannot spend money: token counting, moderation, uploads, cancelling. Every other POST
# (or PUT/PATCH) route can (legacy completions, batches, embeddings, images, audio, fine-tuning, realtime,
# and whatever a provider adds next), so it is checked against the budget and recorded, never relayed
# around a blown cap (issue 14.5: /v1/messages/batches and /v1/complete went through on the real key).
_FREE_POST = re.compile(
    r"^(messages/count_tokens|responses/input_tokens|moderations|files|uploads(/[^/]+(/parts|/complete)?)?"
    r"|(messages/batches|batches|responses|fine_tuning/jobs|vector_stores/[^/]+/file_batches)/[^/]+/cancel)$"
)
METERED_APIS = frozenset({"messages", "responses", "chat", "generate_content"})  # usage read off the wire and priced
_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def can_spend(provider: str, method: str, tail: str) -> bool:
    """Whether a request to this route may cost money. Allow-list of free routes: a route nobody has
    looked at yet counts as one that spends."""
    if classify(provider, tail) in METERED_APIS:
        return True
    if method.upper() in _READ_ONLY_METHODS:
        return False
    path = _V1.sub("", tail.strip("/"))
    if path.endswith(":countTokens"):
        return False
    listing = path == "models" or (path.startswith("models/") and ":" not in path)
    return not (_FREE_POST.match(path) or listing)


# The decoded copy is only read, never sent; a body that inflates past this (a zip bomb) is not read at all.
MAX_DECODED = 64 * 2**20  # as much as a plain body may be (issue 14.9: a 3.9 KB zstd body inflated to 120 MiB)


def decode_body(body: bytes, content_encoding: str | None) -> bytes | bytearray | None:
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
            return out  # a bytearray: read, never sent; no second copy
    except Exception:
        return None
    return None


def _inflate(body: bytes, wbits: int) -> bytes | None:
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, MAX_DECODED + 1)
    return None if len(out) > MAX_DECODED else out


class _Fields(msgspec.Struct):
    """The top-level fields agentmeter reads. Everything else (system prompt, tools, the conversation before
    its newest turn) is skipped by the decoder without being built into Python objects."""

    model: Any = None
    stream: Any = None
    stream_options: Any = msgspec.UNSET
    max_tokens: Any = None
    max_output_tokens: Any = None
    max_completion_tokens: Any = None
    service_tier: Any = None  # OpenAI: priority / flex / auto; what the request asked to be billed at
    messages: list[msgspec.Raw] | msgspec.UnsetType | None = msgspec.UNSET
    input: str | list[msgspec.Raw] | msgspec.UnsetType | None = msgspec.UNSET
    contents: list[msgspec.Raw] | msgspec.UnsetType | None = msgspec.UNSET  # Gemini


_FIELDS = msgspec.json.Decoder(_Fields)


class BodyFacts:
    """What the proxy needs from a request body, read without building the whole body in memory.

    `items` is the conversation key the loop brake reads (`messages`, or the Responses API's `input`);
    `last_item` is its newest entry as raw JSON (the text itself when `input` is a string), `n_items` how
    many there are. `parsed` is the whole body as a dict, decoded on first use only (a model downgrade
    rewrites the body; nothing else needs it)."""

    __slots__ = (
        "_parsed",
        "_plain",
        "has_stream_options",
        "include_usage",
        "input_is_text",
        "items",
        "last_item",
        "max_tokens",
        "model",
        "n_items",
        "ok",
        "service_tier",
        "stream",
    )

    def __init__(self, plain: bytes | bytearray | None = None, fields: _Fields | dict | None = None) -> None:
        self._plain = plain
        self._parsed = None
        self.ok = fields is not None
        self.model = self.max_tokens = self.items = self.last_item = self.service_tier = None
        self.stream = self.include_usage = self.has_stream_options = self.input_is_text = False
        self.n_items = 0
        if fields is None:
            return
        get = fields.get if isinstance(fields, dict) else (lambda k, d=None: _unset(getattr(fields, k), d))
        model = get("model")
        self.model = model if isinstance(model, str) else None
        self.stream = get("stream") is True
        tier = get("service_tier")
        self.service_tier = tier if isinstance(tier, str) else None
        opts = get("stream_options", msgspec.UNSET)
        self.has_stream_options = opts is not msgspec.UNSET
        self.include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        mt = get("max_tokens") or get("max_output_tokens") or get("max_completion_tokens")
        self.max_tokens = mt if isinstance(mt, int) and not isinstance(mt, bool) and mt > 0 else None
        key = next((k for k in ("input", "contents") if get(k, msgspec.UNSET) is not msgspec.UNSET), "messages")
        items = get(key)
        self.items = key
        if isinstance(items, str):
            self.input_is_text = True
            self.last_item = items.encode("utf-8", "surrogatepass")
        elif isinstance(items, list):
            self.n_items = len(items)
            last = items[-1] if items else None
            if isinstance(last, msgspec.Raw):
                self.last_item = bytes(last)
            elif last is not None:
                self.last_item = json.dumps(last, ensure_ascii=False, separators=(",", ":")).encode()
        if isinstance(fields, dict):
            self._parsed = fields

    @property
    def parsed(self) -> dict | None:
        """The whole body as a dict (decoded on first use), or None when it is not a JSON object."""
        if self._parsed is None and self.ok and self._plain is not None:
            data = _loads(self._plain)
            self._parsed = data if isinstance(data, dict) else None
        return self._parsed


def _unset(value, default):
    return default if value is msgspec.UNSET else value


def _loads(plain: bytes | bytearray):
    try:
        return json.loads(plain)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly nested JSON
        return None


def read_body(plain: bytes | bytearray | None) -> BodyFacts:
    """The facts of a JSON request body. The fast decoder reads only the fields above; a body it does not
    take (not UTF-8, NaN, an unexpected type for `messages`/`input`, not an object) is read in full by
    the json module, as any JSON must be accepted, and anything that is not a JSON object has no facts."""
    if not plain:
        return BodyFacts()
    try:
        return BodyFacts(plain, _FIELDS.decode(plain))
    except (msgspec.DecodeError, RecursionError):
        pass
    data = _loads(plain)
    return BodyFacts(plain, data) if isinstance(data, dict) else BodyFacts()


def inject_include_usage(plain: bytes, facts: BodyFacts) -> bytes:
    """Ask a Chat Completions upstream for the final usage chunk, changing as few bytes as possible."""
    if not facts.has_stream_options and plain.lstrip()[:1] == b"{":  # not for UTF-16/32 JSON (BOM first)
        start = plain.index(b"{") + 1
        return plain[:start] + b'"stream_options":{"include_usage":true},' + plain[start:]
    data = dict(facts.parsed or {})
    opts = data.get("stream_options")
    data["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
