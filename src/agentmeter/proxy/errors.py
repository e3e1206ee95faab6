"""Errors agentmeter itself answers with, in the provider's own shape so the agent shows them cleanly.

Messages never contain a double quote: Claude Code extracts the message with a regex that stops at
the first `"` (wire-protocols 1.6).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "insufficient_quota",
    500: "server_error",
    502: "server_error",
}
_OPENAI_CODES = {401: "invalid_api_key", 413: "request_too_large", 502: "upstream_unreachable"}
# google.rpc.Code names, as the Gemini API puts them in `error.status`.
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# Gemini CLI retries a 429 unless it reads it as terminal; a RetryInfo delay above its 300 s ceiling is
# terminal (gemini-cli classifyGoogleError, MAX_RETRYABLE_DELAY_SECONDS), and it then shows the message.
GEMINI_MIN_RETRY_DELAY_S = 301


def google_error(status: int, message: str, details: list | None = None) -> dict:
    return {
        "error": {
            "code": status,
            "message": message,
            "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
            **({"details": details} if details else {}),
        }
    }


def provider_error(provider: str, status: int, message: str, *, headers: dict | None = None) -> web.Response:
    message = "agentmeter: " + message.replace('"', "'")
    request_id = f"agentmeter_{uuid.uuid4().hex}"
    hdrs = {"request-id": request_id, "x-request-id": request_id, **(headers or {})}
    if status >= 400 and status < 500 and status != 408:
        # SDKs (Stainless) and Claude Code honour this: no retry storm on our own refusals.
        hdrs.setdefault("x-should-retry", "false")
    if provider == "anthropic":
        body = {
            "type": "error",
            "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message},
            "request_id": request_id,
        }
    elif provider == "gemini":
        body = google_error(status, message)
    else:
        body = {
            "error": {
                "message": message,
                "type": _OPENAI_TYPES.get(status, "invalid_request_error"),
                "param": None,
                "code": _OPENAI_CODES.get(status, "agentmeter_error"),
            }
        }
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json", headers=hdrs)


def guess_provider(path: str) -> str:
    """For requests that never reached a provider route (bad token, unknown path)."""
    p = path.lower()
    if "/anthropic" in p or "/messages" in p:
        return "anthropic"
    if "/gemini" in p or "generatecontent" in p or "/v1beta/" in p:
        return "gemini"
    return "openai"


# Claude Code, logged in with a Claude subscription, words every 429 without this header as "Server is
# temporarily limiting requests (not your usage limit) · …" — false for agentmeter's refusal. With it, Claude
# Code shows agentmeter's message alone (checked with 2.1.197). Claude Code caches the value until its next
# successful response, which clears it.
SUBSCRIPTION_REFUSAL_HEADER = ("anthropic-ratelimit-unified-overage-disabled-reason", "agentmeter_refusal")


def refusal(
    api: str,
    provider: str,
    message: str,
    resets_at_s: int | None,
    now_s: int | None = None,
    status: int = 429,
    subscription: bool = False,
) -> web.Response:
    """agentmeter's 'no', in the shape each agent shows cleanly and does not retry (DESIGN section 6).

    Claude Code: 429 rate_limit_error, `x-should-retry: false`, no retry-after, no
    anthropic-ratelimit-unified-* headers (but one, for subscription logins: SUBSCRIPTION_REFUSAL_HEADER).
    Codex (Responses): 429 usage_limit_reached with resets_at,
    which it renders as its own usage-limit line. Chat Completions and SDK clients: insufficient_quota.
    Gemini: 429 RESOURCE_EXHAUSTED with an ErrorInfo naming agentmeter and a RetryInfo until the reset,
    at least GEMINI_MIN_RETRY_DELAY_S, so Gemini CLI shows it once instead of backing off and retrying.
    """
    message = message.replace('"', "'")
    request_id = f"agentmeter_{uuid.uuid4().hex}"
    headers = {"x-should-retry": "false", "request-id": request_id, "x-request-id": request_id}
    body: dict[str, Any]
    if provider == "anthropic":
        # A 402 is Anthropic's billing_error: a rate_limit_error type is retried by clients that read the type.
        kind = "rate_limit_error" if status == 429 else "billing_error"
        body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
        if subscription:
            headers[SUBSCRIPTION_REFUSAL_HEADER[0]] = SUBSCRIPTION_REFUSAL_HEADER[1]
    elif provider == "gemini":
        wait = max(GEMINI_MIN_RETRY_DELAY_S, (resets_at_s - now_s) if resets_at_s and now_s else 0)
        meta = {"resets_at": str(resets_at_s)} if resets_at_s else {}
        body = google_error(
            429,
            message,
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "AGENTMETER_BUDGET_EXCEEDED",
                    "domain": "agentmeter.local",
                    "metadata": meta,
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{wait}s"},
            ],
        )
    elif api == "responses":
        body = {
            "error": {
                "type": "usage_limit_reached",
                "code": "agentmeter_budget_exceeded",
                "message": message,
                "resets_at": resets_at_s,
            }
        }
    else:
        body = {
            "error": {
                "type": "insufficient_quota",
                "code": "agentmeter_budget_exceeded",
                "message": message,
                "param": None,
            }
        }
    if provider == "gemini":
        body["error"]["code"] = status
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json", headers=headers)
