"""Frozen value types shared by every layer. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Literal

Provider = Literal["anthropic", "openai", "gemini"]
# Which wire API a request used; decides the parser and the refusal shape.
Api = Literal["messages", "count_tokens", "responses", "chat", "generate_content", "models", "other"]
# `ok`: terminal event seen and usage read; `partial`: the stream was cut short (output estimated);
# `error`: the provider answered with an error; `unmetered`: the parser could not read usage;
# `refused`: agentmeter answered itself (budget); `passthrough`: a non-billable route.
Status = Literal["ok", "partial", "error", "unmetered", "refused", "passthrough"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts in the contract's buckets (DESIGN section 6; their names are `ledger.schema.BUCKETS`).

    `input_tokens` is always the *uncached* remainder; `cache_write_tokens` is the total of the 5-minute
    and 1-hour writes (kept split too); `reasoning_tokens` is a subset of `output_tokens`.
    """

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    web_search_requests: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Everything the model read: uncached + cache reads + cache writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    @property
    def cache_hit_rate(self) -> float | None:
        denom = self.prompt_tokens
        return self.cache_read_tokens / denom if denom else None

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Metered:
    """What a sans-io parser read from one response."""

    usage: Usage | None = None
    model: str | None = None
    response_id: str | None = None
    # True once the terminal event (message_stop, response.completed/incomplete/failed, [DONE]) was seen.
    complete: bool = False
    # The provider said no: an HTTP error body or an `error` / `response.failed` event.
    error_type: str | None = None
    error_message: str | None = None
    # Output tokens estimated from relayed deltas, for streams cut short before the final usage.
    estimated_output_tokens: int = 0
    # Set when the parser could not make sense of the stream; the request still completed.
    fault: str | None = None
    stop_reason: str | None = None
    # How the provider served it, as `pricing.tiers.normalize_tier` reads the wire (fast, priority, flex,
    # batch; None is standard). Priced at that tier's rates.
    tier: str | None = None
    # A plan-window reading sent inside the stream (Codex's `codex.rate_limits` event): a
    # `providers.ratelimits.PlanSnapshot`, observed by the proxy like the headers' (issue 18).
    plan: object | None = None


@dataclass(frozen=True, slots=True)
class Cost:
    """USD cost of one request, derived from tokens."""

    usd: float | None
    # `genai-prices`, `override`, `fallback` (unpriced model counted at a conservative rate), `none`.
    source: str
    matched_model: str | None = None
    price_version: str | None = None
    unpriced: bool = False
    reason: str | None = None
    # For an unpriced model, the conservative figure caps count; `usd` stays the same figure.


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the proxy learned from the request before forwarding it."""

    provider: Provider
    api: Api
    method: str
    path: str
    model: str | None = None
    stream: bool = False
    body_bytes: int = 0
    agent_session_id: str | None = None
    agent_id: str | None = None  # Claude Code sub-agent
    subscription: bool = False  # passthrough credentials of a subscription login
    upstream: str = ""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One row of the ledger's `requests` table."""

    request_id: str
    session_id: str | None
    started_at_ms: int
    provider: str
    api: str
    method: str
    path: str
    model_requested: str | None
    model_used: str | None
    stream: bool
    status: str
    http_status: int | None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    price_source: str = "none"
    price_model: str | None = None
    price_version: str | None = None
    unpriced: bool = False
    tier: str | None = None  # fast, priority, flex, batch; None is standard
    partial: bool = False
    unmetered: bool = False
    reason: str | None = None
    decision: str = "allow"
    upstream_request_id: str | None = None
    response_id: str | None = None
    agent_session_id: str | None = None
    agent_id: str | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    subscription: bool = False
    agent: str | None = None
    repo: str | None = None
    branch: str | None = None
    # What the budget policy saw, kept so `budget test` replays the same decision.
    est_input_tokens: int | None = None
    turn_boundary: bool | None = None
    loop_streak: int | None = None
    downgrade_to: str | None = None
    pinned: bool | None = None
    # `proxy` for metered traffic; `claude-log`, `codex-log`, `cursor-export` for imported usage.
    source: str = "proxy"
    import_key: str | None = None

    def with_(self, **changes) -> RequestRecord:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Session:
    """A metered session as the proxy serves it (one `agentmeter run`, or one `agentmeter env`)."""

    id: str
    agent: str
    started_at_ms: int
    developer: str | None = None
    team: str | None = None
    cost_center: str | None = None
    repo: str | None = None
    branch: str | None = None
    cwd: str | None = None
    budget_usd: float | None = None
    tags: tuple[tuple[str, str], ...] = ()
    ended_at_ms: int | None = None
    exit_code: int | None = None
    # Key mode per provider: the agent got a virtual key, the proxy swaps in the real one.
    key_mode: tuple[str, ...] = ()
    # How its requests prove they belong to it: SHA-256 of the session token and of the virtual key.
    token_hash: str = ""
    vkey_hash: str | None = None
    # The agent's own id for its conversation, once a request named it (x-claude-code-session-id, …).
    agent_session_id: str | None = None


@dataclass(frozen=True, slots=True)
class PriceRate:
    """USD per million tokens, from `[prices."provider:model"]` in config (negotiated rates)."""

    input: float
    output: float
    cache_read: float | None = None  # default 0.1 × input
    cache_write: float | None = None  # 5-minute writes; default 1.25 × input
    cache_write_1h: float | None = None  # default 2 × input
