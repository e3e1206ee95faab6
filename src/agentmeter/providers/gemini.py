"""Gemini API (generativelanguage.googleapis.com): request paths and usage from responses, sans-io.

Paths: `v1beta/models/{model}:generateContent` (one JSON object), `:streamGenerateContent` (with
`alt=sse`, data-only SSE with one GenerateContentResponse per event; without it, one JSON array whose
elements arrive over time), `:countTokens` (never billable, never refused).

Usage (DESIGN section 9): every chunk may carry `usageMetadata`, and the counts are cumulative, so the
last one wins. `promptTokenCount` includes `cachedContentTokenCount`; `toolUsePromptTokenCount` (the
tool-use prompt, e.g. search grounding results) is billed as input on top; `thoughtsTokenCount` is
billed as output and kept as reasoning. There is no terminal event: the chunk whose candidate carries a
`finishReason` is the last content the model sends, and the usage on it is final.
"""

from __future__ import annotations

import re
from typing import Any

from agentmeter.core.models import Metered, Usage
from agentmeter.providers.base import StreamMeter, as_dict, as_int, as_str, json_loads_safe

# `v1beta/models/gemini-2.5-pro:streamGenerateContent` (also v1, v1alpha, tunedModels/…).
_PATH = re.compile(r"^(?:v1[a-z0-9]*/)?(?P<kind>models|tunedModels)/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
GENERATE_METHODS = {"generateContent": False, "streamGenerateContent": True}
COUNT_METHODS = ("countTokens", "computeTokens")


def parse_path(tail: str) -> tuple[str, str | None, bool]:
    """(api, model, streamed) for a path under the Gemini base URL. api is `generate_content`,
    `count_tokens`, `models` or `other`."""
    path = tail.strip("/")
    m = _PATH.match(path)
    if m is None:
        bare = re.sub(r"^v1[a-z0-9]*/", "", path)
        return ("models" if bare == "models" or bare.startswith("models/") else "other"), None, False
    method, model = m.group("method"), m.group("model")
    if method in GENERATE_METHODS:
        return "generate_content", model, GENERATE_METHODS[method]
    if method in COUNT_METHODS:
        return "count_tokens", model, False
    return "other", model, False


def with_model(tail: str, model: str) -> str:
    """The same path with another model (a budget downgrade: Gemini names the model in the URL)."""
    return re.sub(r"(models/)[^/:]+(:)", lambda m: m.group(1) + model + m.group(2), tail, count=1)


def usage_from_gemini(meta: Any) -> Usage:
    d = as_dict(meta)
    prompt = as_int(d.get("promptTokenCount"))
    cached = min(prompt, as_int(d.get("cachedContentTokenCount")))
    tool_prompt = as_int(d.get("toolUsePromptTokenCount"))
    thoughts = as_int(d.get("thoughtsTokenCount"))
    out = as_int(d.get("candidatesTokenCount")) + thoughts
    return Usage(
        input_tokens=prompt - cached + tool_prompt,
        cache_read_tokens=cached,
        output_tokens=out,
        reasoning_tokens=thoughts,
    )


class _Reading:
    """What the chunks said so far: the latest usage, model, response id, finish reason, error."""

    def __init__(self) -> None:
        self.meta: dict | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.finish: str | None = None
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.text_bytes = 0
        self.chunks = 0

    def take(self, obj: Any) -> bool:
        """One GenerateContentResponse (or an error object). True when it finished the response."""
        if not isinstance(obj, dict):
            return False
        err = obj.get("error")
        if isinstance(err, dict):
            self.error_type = as_str(err.get("status")) or str(as_int(err.get("code")) or "error")
            self.error_message = as_str(err.get("message"))
            return True
        self.chunks += 1
        if isinstance(obj.get("usageMetadata"), dict):
            self.meta = obj["usageMetadata"]
        self.model = as_str(obj.get("modelVersion")) or self.model
        self.response_id = as_str(obj.get("responseId")) or self.response_id
        done = False
        for cand in obj.get("candidates") or []:
            cand = as_dict(cand)
            for part in as_dict(cand.get("content")).get("parts") or []:
                text = as_dict(part).get("text")
                if isinstance(text, str):
                    self.text_bytes += len(text.encode())
            if as_str(cand.get("finishReason")):
                self.finish = cand["finishReason"]
                done = True
        block = as_dict(obj.get("promptFeedback")).get("blockReason")
        if as_str(block):  # a blocked prompt gets no candidates: that answer is complete too
            self.finish, done = str(block), True
        return done

    def metered(self, complete: bool, fault: str | None = None) -> Metered:
        usage = usage_from_gemini(self.meta) if self.meta is not None else None
        finished = complete and usage is not None and self.error_type is None
        estimate = 0 if finished else -(-self.text_bytes // 4)
        return Metered(
            usage=usage,
            model=self.model,
            response_id=self.response_id,
            complete=complete,
            error_type=self.error_type,
            error_message=self.error_message,
            estimated_output_tokens=estimate,
            fault=fault,
            stop_reason=self.finish,
        )


class GeminiStreamMeter(StreamMeter):
    """`streamGenerateContent?alt=sse`: data-only events, each a whole GenerateContentResponse."""

    TERMINAL_MARKERS = (b'"finishReason"',)

    def __init__(self) -> None:
        super().__init__()
        self._r = _Reading()

    def _on_event(self, name: bytes | None, data: bytes | str) -> None:
        obj = json_loads_safe(data)
        if obj is None:
            return
        text_before = self._r.text_bytes
        if self._r.take(obj):
            self._complete = True
        self._delta_bytes += self._r.text_bytes - text_before
        self._delta_events += 1
        self._model = self._r.model
        self._response_id = self._r.response_id
        self._error_type, self._error_message = self._r.error_type, self._r.error_message
        self._stop_reason = self._r.finish

    def _usage(self) -> Usage | None:
        return usage_from_gemini(self._r.meta) if self._r.meta is not None else None


class JsonArrayStream:
    """The elements of a streamed JSON array (`[{…}\\r\\n,{…}]`), yielded as each one closes. Sans-io: feed
    bytes in any chunking; strings and escapes are tracked so braces inside text do not count."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._depth = 0
        self._in_str = False
        self._escape = False
        self._start: int | None = None
        self._scanned = 0

    def feed(self, chunk: bytes) -> list[Any]:
        out: list[Any] = []
        buf = self._buf
        buf.extend(chunk)
        i = self._scanned
        while i < len(buf):
            c = buf[i]
            if self._in_str:
                if self._escape:
                    self._escape = False
                elif c == 0x5C:  # backslash
                    self._escape = True
                elif c == 0x22:
                    self._in_str = False
            elif c == 0x22:
                self._in_str = True
            elif c in (0x7B, 0x5B):  # { [
                self._depth += 1
                if self._depth == 2 and c == 0x7B:
                    self._start = i
            elif c in (0x7D, 0x5D):
                if self._depth == 2 and c == 0x7D and self._start is not None:
                    out.append(json_loads_safe(bytes(buf[self._start : i + 1])))
                    self._start = None
                self._depth -= 1
            i += 1
        # Keep only the element being read; everything before it is done.
        keep = self._start if self._start is not None else len(buf)
        del buf[:keep]
        if self._start is not None:
            self._start = 0
        self._scanned = len(buf)
        return out


def parse_gemini_json(body: bytes) -> Metered:
    """A whole response: one GenerateContentResponse, a JSON-array stream, or an error object."""
    data = json_loads_safe(body)
    if data is None:
        if body.lstrip()[:1] != b"[":
            return Metered(complete=False, fault="response is not JSON")
        # A JSON-array stream cut short: the elements that did arrive, flagged incomplete.
        r = _Reading()
        for obj in JsonArrayStream().feed(body):
            r.take(obj)
        return r.metered(complete=False)
    r = _Reading()
    for obj in data if isinstance(data, list) else [data]:
        # An error object inside the array (a stream that failed part-way) counts like a top-level one.
        r.take(obj)
    if isinstance(data, dict) and "totalTokens" in data:  # countTokens: nothing billed
        return Metered(complete=True)
    return r.metered(complete=True)
