"""The typed objects one request travels with: its Exchange (what is known while it is in flight) and its
Outcome (what the relay saw of the answer). Every step of a request's path reads and writes these:
route → preflight → relay → metering → alerts.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from ..core.models import Session
from ..providers.request import METERED_APIS
from .enforce import Check

BILLABLE = METERED_APIS  # one list of the APIs whose usage is read and priced (providers/request.py)

# Hop-by-hop headers (RFC 9110 7.6.1) plus the ones aiohttp recomputes for the new connection.
HOP_BY_HOP = frozenset(
    {
        "x-agentmeter-session",  # the session token of /h/ routes: ours, never the provider's
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(slots=True)
class Exchange:
    """Everything known about one request while it is in flight."""

    request_id: str
    provider: str
    api: str
    method: str
    path: str
    session: Session
    started_ms: int
    started_mono: float
    model_requested: str | None = None
    stream: bool = False
    subscription: bool = False
    agent_session_id: str | None = None
    agent_id: str | None = None
    strip_usage: bool = False  # include_usage was added for metering: the usage chunk is not the agent's
    decision: str = "allow"
    reason: str | None = None
    plan_account: str | None = None  # which plan account's windows apply (subscription traffic)
    service_tier: str | None = None  # the tier the request asked for; the response's own wins
    spends: bool = False  # a route that can spend money though its usage is not read
    check: Check | None = None  # the budget check's result
    check_error: str | None = None  # why the budget check itself failed, when it did
    settled: bool = False  # its row has been handed to the writer (a late journal line is not needed)

    @property
    def billable(self) -> bool:
        return self.api in BILLABLE


@dataclass(slots=True)
class Outcome:
    """What the relay saw of the answer (the Metered parse result is the other half of a row)."""

    http_status: int | None = None
    upstream_request_id: str | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    end: str | None = None  # why a stream ended early: client_disconnected, upstream_reset, cancelled, …
    fault: str | None = None  # metered, but not entirely: what went wrong


@dataclass(slots=True)
class Outgoing:
    """A checked HTTP request, ready to go upstream. `body` is dropped once it is sent."""

    ex: Exchange
    url: str
    base: str
    body: bytes | bytearray | None
    headers: dict[str, str]
    held: int = 0  # bytes of the daemon's large-body budget this request holds until its body is sent


# Request ids need to be unique, not secret: 128 bits from a generator seeded once from os.urandom. uuid4()
# reads os.urandom on every call, which costs ~40 µs in some VMs (a getrandom syscall each time).
_ids = random.Random(os.urandom(32))


def new_request_id() -> str:
    return f"amr_{_ids.getrandbits(128):032x}"


def short(value: str | None, limit: int = 256) -> str | None:
    """A header or body string headed for every row: bounded, so a 60 KB header cannot bloat the ledger."""
    return value[:limit] if value is not None and len(value) > limit else value
