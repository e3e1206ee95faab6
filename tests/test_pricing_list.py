"""Issue 15: prices equal the VENDORS' list prices (not genai-prices' own numbers), per (model, tier, usage
mix, date); and the same through the real proxy with the official SDKs.

The expected figures are worked out by hand from the list prices written next to each row, with the page
they are from. USD per million tokens (MTok) unless said otherwise.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import anthropic
import genai_prices
import openai
import pytest
from genai_prices import data_snapshot

from agentmeter import pricing
from agentmeter.core.models import Usage
from agentmeter.pricing import tiers

ANTHROPIC = "https://docs.claude.com/en/docs/about-claude/pricing"
ANTHROPIC_FAST = "https://docs.claude.com/en/docs/build-with-claude/fast-mode"
OPENAI = "https://platform.openai.com/docs/pricing"
O3_CUT = "https://community.openai.com/t/o3-is-80-cheaper-and-introducing-o3-pro/1284925"  # 2025-06-10
M = 1_000_000


def mtok(n: int, rate: float) -> float:
    return n * rate / M


MAY_2025 = datetime(2025, 5, 15, 12, tzinfo=UTC)
JULY_2025 = datetime(2025, 7, 1, 12, tzinfo=UTC)
FEB_2026 = datetime(2026, 2, 20, 12, tzinfo=UTC)
APR_2026 = datetime(2026, 4, 1, 12, tzinfo=UTC)

# (id, provider, model, tier, usage, at, expected USD, list price source)
ROWS = [
    # Sonnet 4.5: $3 in, $3.75 5m write, $6 1h write, $0.30 read, $15 out.
    (
        "sonnet-4.5 standard",
        "anthropic",
        "claude-sonnet-4-5-20250929",
        None,
        Usage(input_tokens=1000, output_tokens=1000),
        None,
        mtok(1000, 3) + mtok(1000, 15),
        ANTHROPIC,
    ),
    (
        "sonnet-4.5 5m write",
        "anthropic",
        "claude-sonnet-4-5",
        None,
        Usage(cache_write_tokens=10_000, cache_write_5m_tokens=10_000),
        None,
        mtok(10_000, 3.75),
        ANTHROPIC,
    ),
    (
        "sonnet-4.5 1h write",
        "anthropic",
        "claude-sonnet-4-5",
        None,
        Usage(cache_write_tokens=10_000, cache_write_1h_tokens=10_000),
        None,
        mtok(10_000, 6),
        ANTHROPIC,
    ),
    (
        "sonnet-4.5 cached input",
        "anthropic",
        "claude-sonnet-4-5",
        None,
        Usage(input_tokens=100, cache_read_tokens=50_000, output_tokens=500),
        None,
        mtok(100, 3) + mtok(50_000, 0.30) + mtok(500, 15),
        ANTHROPIC,
    ),
    # Extended thinking is billed as output tokens (thinking is part of output_tokens).
    (
        "sonnet-4.5 thinking",
        "anthropic",
        "claude-sonnet-4-5",
        None,
        Usage(input_tokens=2000, output_tokens=5000, reasoning_tokens=4000),
        None,
        mtok(2000, 3) + mtok(5000, 15),
        ANTHROPIC,
    ),
    # Web search: $10 per 1,000 searches, plus the tokens.
    (
        "sonnet-4.5 web search",
        "anthropic",
        "claude-sonnet-4-5",
        None,
        Usage(input_tokens=1000, output_tokens=1000, web_search_requests=2),
        None,
        mtok(1000, 3) + mtok(1000, 15) + 2 * 10 / 1000,
        ANTHROPIC,
    ),
    # Batch: 50 % of standard.
    (
        "sonnet-4.5 batch",
        "anthropic",
        "claude-sonnet-4-5",
        "batch",
        Usage(input_tokens=10_000, output_tokens=1000),
        None,
        mtok(10_000, 1.5) + mtok(1000, 7.5),
        ANTHROPIC,
    ),
    # Priority Tier is a capacity commitment billed at standard list prices.
    (
        "sonnet-4.5 priority tier",
        "anthropic",
        "claude-sonnet-4-5",
        tiers.normalize_tier("anthropic", service_tier="priority"),
        Usage(input_tokens=1000, output_tokens=1000),
        None,
        mtok(1000, 3) + mtok(1000, 15),
        ANTHROPIC,
    ),
    # Sonnet 4 long context: a prompt over 200K input tokens bills ALL tokens at $6 in / $22.50 out
    # (writes $7.50 5m, $12 1h; reads $0.60). At exactly 200,000 the standard $3 / $15 applies.
    (
        "sonnet-4 200,000",
        "anthropic",
        "claude-sonnet-4-20250514",
        None,
        Usage(input_tokens=200_000, output_tokens=1000),
        None,
        mtok(200_000, 3) + mtok(1000, 15),
        ANTHROPIC,
    ),
    (
        "sonnet-4 200,001",
        "anthropic",
        "claude-sonnet-4-20250514",
        None,
        Usage(input_tokens=200_001, output_tokens=1000),
        None,
        mtok(200_001, 6) + mtok(1000, 22.5),
        ANTHROPIC,
    ),
    (
        "sonnet-4 200,001 cache mix",
        "anthropic",
        "claude-sonnet-4-0",
        None,
        Usage(
            input_tokens=1000,
            cache_read_tokens=150_000,
            cache_write_tokens=49_001,
            cache_write_5m_tokens=39_001,
            cache_write_1h_tokens=10_000,
            output_tokens=2000,
        ),
        None,
        mtok(1000, 6) + mtok(150_000, 0.6) + mtok(39_001, 7.5) + mtok(10_000, 12) + mtok(2000, 22.5),
        ANTHROPIC,
    ),
    # Opus 4.6: $5 / $25; over 200K input tokens $10 / $37.50 until the 1M context window became generally
    # available at standard prices on 2026-03-13.
    (
        "opus-4.6 200,000 Feb 2026",
        "anthropic",
        "claude-opus-4-6",
        None,
        Usage(input_tokens=200_000, output_tokens=1000),
        FEB_2026,
        mtok(200_000, 5) + mtok(1000, 25),
        ANTHROPIC,
    ),
    (
        "opus-4.6 200,001 Feb 2026",
        "anthropic",
        "claude-opus-4-6",
        None,
        Usage(input_tokens=200_001, output_tokens=1000),
        FEB_2026,
        mtok(200_001, 10) + mtok(1000, 37.5),
        ANTHROPIC,
    ),
    (
        "opus-4.6 200,001 Apr 2026",
        "anthropic",
        "claude-opus-4-6",
        None,
        Usage(input_tokens=200_001, output_tokens=1000),
        APR_2026,
        mtok(200_001, 5) + mtok(1000, 25),
        ANTHROPIC,
    ),
    # Opus 4.6 fast mode: $30 in / $150 out (6x), the caching multipliers on top (read 0.1x = $3).
    (
        "opus-4.6 fast",
        "anthropic",
        "claude-opus-4-6",
        "fast",
        Usage(input_tokens=10_000, cache_read_tokens=100_000, output_tokens=2000),
        None,
        mtok(10_000, 30) + mtok(100_000, 3) + mtok(2000, 150),
        ANTHROPIC_FAST,
    ),
    # GPT-5: $1.25 in, $0.125 cached, $10 out; priority $2.50 / $0.25 / $20; flex and batch $0.625 / $0.0625 / $5.
    (
        "gpt-5 standard cached+reasoning",
        "openai",
        "gpt-5",
        None,
        Usage(input_tokens=10_000, cache_read_tokens=90_000, output_tokens=5000, reasoning_tokens=3000),
        None,
        mtok(10_000, 1.25) + mtok(90_000, 0.125) + mtok(5000, 10),
        OPENAI,
    ),
    (
        "gpt-5 priority",
        "openai",
        "gpt-5",
        "priority",
        Usage(input_tokens=10_000, cache_read_tokens=90_000, output_tokens=5000),
        None,
        mtok(10_000, 2.5) + mtok(90_000, 0.25) + mtok(5000, 20),
        OPENAI,
    ),
    # Priority existed long before genai-prices added its variant (dated 2026-10-12 in 0.2.3).
    (
        "gpt-5 priority Apr 2026",
        "openai",
        "gpt-5",
        "priority",
        Usage(input_tokens=10_000, cache_read_tokens=90_000, output_tokens=5000),
        APR_2026,
        mtok(10_000, 2.5) + mtok(90_000, 0.25) + mtok(5000, 20),
        OPENAI,
    ),
    (
        "gpt-5 flex",
        "openai",
        "gpt-5",
        "flex",
        Usage(input_tokens=10_000, cache_read_tokens=90_000, output_tokens=5000),
        None,
        mtok(10_000, 0.625) + mtok(90_000, 0.0625) + mtok(5000, 5),
        OPENAI,
    ),
    (
        "gpt-5 batch",
        "openai",
        "gpt-5",
        "batch",
        Usage(input_tokens=10_000, output_tokens=1000),
        None,
        mtok(10_000, 0.625) + mtok(1000, 5),
        OPENAI,
    ),
    # Codex's "fast" service tier is priority processing.
    (
        "gpt-5 codex fast",
        "openai",
        "gpt-5-codex",
        tiers.normalize_tier("openai", service_tier="fast"),
        Usage(input_tokens=10_000, output_tokens=1000),
        None,
        mtok(10_000, 2.5) + mtok(1000, 20),
        OPENAI,
    ),
    # GPT-4.1 priority: $3.50 in, $0.875 cached, $14 out.
    (
        "gpt-4.1 priority",
        "openai",
        "gpt-4.1",
        "priority",
        Usage(input_tokens=10_000, cache_read_tokens=20_000, output_tokens=1000),
        None,
        mtok(10_000, 3.5) + mtok(20_000, 0.875) + mtok(1000, 14),
        OPENAI,
    ),
    # Web search tool calls: $10 per 1,000 calls.
    (
        "gpt-5 web search",
        "openai",
        "gpt-5",
        None,
        Usage(input_tokens=1000, output_tokens=1000, web_search_requests=3),
        None,
        mtok(1000, 1.25) + mtok(1000, 10) + 3 * 10 / 1000,
        OPENAI,
    ),
    # o3: $10 in / $40 out until 2025-06-10, then $2 / $8.
    (
        "o3 May 2025",
        "openai",
        "o3",
        None,
        Usage(input_tokens=10_000, output_tokens=1000),
        MAY_2025,
        mtok(10_000, 10) + mtok(1000, 40),
        O3_CUT,
    ),
    (
        "o3 July 2025",
        "openai",
        "o3",
        None,
        Usage(input_tokens=10_000, output_tokens=1000),
        JULY_2025,
        mtok(10_000, 2) + mtok(1000, 8),
        OPENAI,
    ),
]


@pytest.mark.parametrize(
    ("provider", "model", "tier", "usage", "at", "expected", "source"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_list_price(provider, model, tier, usage, at, expected, source) -> None:
    cost = pricing.price(provider, model, usage, tier=tier, at=at)
    assert not cost.unpriced, cost
    assert cost.usd == pytest.approx(expected, abs=1e-9), (source, cost)


def test_dated_price_on_the_cached_path_follows_the_date() -> None:
    # The first call learns o3's rate card at today's prices; a May 2025 request must still get May's.
    usage = Usage(input_tokens=10_000, output_tokens=1000)
    today = pricing.price("openai", "o3", usage)
    may = pricing.price("openai", "o3", usage, at=MAY_2025)
    assert (today.usd, may.usd) == (pytest.approx(0.028), pytest.approx(0.14))


def test_a_correction_gives_way_once_the_data_has_the_tier() -> None:
    # The correction layer applies only while genai-prices lacks the tier: Opus 4.8's own fast rates win.
    cost = pricing.price("anthropic", "claude-opus-4-8", Usage(input_tokens=M), tier="fast")
    assert cost.source == "genai-prices"
    info = next(
        m
        for p in data_snapshot.get_snapshot().providers
        if p.id == "anthropic"
        for m in p.models
        if m.id == "claude-opus-4-6"
    )
    assert not tiers.has_tier(info, "anthropic", "fast"), "genai-prices now has Opus 4.6 fast: drop the correction"
    for c in tiers.CORRECTIONS:
        assert c.source.startswith("https://"), c


def test_unknown_model_is_estimated_from_its_family_never_the_maximum() -> None:
    usage = Usage(input_tokens=100_000, output_tokens=10_000)
    cost = pricing.price("openai", "gpt-5.7-codex", usage)
    assert cost.unpriced and cost.source == "estimate" and cost.matched_model == "gpt-5.5"
    assert cost.usd == pytest.approx(pricing.price("openai", "gpt-5.5", usage).usd)
    top = pricing.fallback_rate("openai")
    assert cost.usd < (usage.input_tokens * top.input + usage.output_tokens * top.output) / M / 4
    assert 'set [prices."openai:gpt-5.7-codex"]' in cost.reason
    claude = pricing.price("anthropic", "claude-sonnet-5-7", usage)
    assert (claude.source, claude.matched_model) == ("estimate", "claude-sonnet-5-5")
    # No family member at all: the conservative fallback, still flagged.
    odd = pricing.price("openai", "zz-model", usage)
    assert odd.source == "fallback" and odd.unpriced


def test_genai_prices_api_agentmeter_relies_on() -> None:
    """Guards the genai-prices API used (pyproject allows every release below 1.0): a release that changes
    one of these fails here, not in a user's daemon."""
    params = inspect.signature(genai_prices.calc_price).parameters
    assert {"provider_id", "genai_request_timestamp", "price_context"} <= set(params)
    assert callable(data_snapshot.get_snapshot) and callable(data_snapshot.set_custom_snapshot)
    assert {"providers", "from_auto_update"} <= set(inspect.signature(data_snapshot.DataSnapshot).parameters)
    from genai_prices.types import StartDateConstraint, _providers_from_raw  # noqa: F401
    from genai_prices.update_prices import DEFAULT_UPDATE_URL

    assert DEFAULT_UPDATE_URL.startswith("https://")
    model = next(
        m for p in data_snapshot.get_snapshot().providers if p.id == "openai" for m in p.models if m.id == "gpt-5"
    )
    assert model.price_variants and callable(model.get_prices)
    u = genai_prices.Usage(input_tokens=1, cache_write_5m_tokens=0, cache_write_1h_tokens=0, web_searches=1)
    assert u.web_searches == 1


# --- through the real proxy with the official SDKs --------------------------------------------------------

FAKE_KEY = "sk-ant-test-client-key-0000"


def _row(stack, sid):
    rows = stack.rows(sid)
    assert len(rows) == 1, rows
    return rows[0]


def test_sdk_fast_mode_claude_stream(stack) -> None:
    s = stack.open_session()
    stack.configure(
        usage={
            "input_tokens": 10_000,
            "cache_read_tokens": 100_000,
            "cache_write_tokens": 0,
            "output_tokens": 2000,
            "speed": "fast",
        }
    )
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0)
    with client.messages.stream(
        model="claude-opus-4-6", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as st:
        st.get_final_message()
    row = _row(stack, s["session_id"])
    assert row["tier"] == "fast"
    # Opus 4.6 fast mode: $30 in, $3 cache read, $150 out ($0.30 + $0.30 + $0.30).
    assert round(row["cost_usd"], 2) == 0.90
    assert row["cost_usd"] == pytest.approx(mtok(10_000, 30) + mtok(100_000, 3) + mtok(2000, 150), abs=1e-9)


def test_sdk_priority_responses_stream(stack) -> None:
    s = stack.open_session()
    stack.configure(
        usage={
            "input_tokens": 10_000,
            "cache_read_tokens": 90_000,
            "cache_write_tokens": 0,
            "output_tokens": 5000,
            "reasoning_tokens": 3000,
        }
    )
    client = openai.OpenAI(base_url=s["openai"], api_key="sk-test-client", max_retries=0)
    events = list(client.responses.create(model="gpt-5", input="hi", stream=True, service_tier="priority"))
    assert events[-1].response.service_tier == "priority"
    row = _row(stack, s["session_id"])
    assert row["tier"] == "priority" and row["reasoning_tokens"] == 3000
    assert row["cost_usd"] == pytest.approx(mtok(10_000, 2.5) + mtok(90_000, 0.25) + mtok(5000, 20), abs=1e-9)
    assert round(row["cost_usd"], 2) == 0.15


def test_sdk_sonnet_4_above_200k(stack) -> None:
    s = stack.open_session()
    stack.configure(
        usage={"input_tokens": 200_001, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 1000}
    )
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0)
    client.messages.create(model="claude-sonnet-4-20250514", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    row = _row(stack, s["session_id"])
    assert row["price_source"] == "correction"
    assert row["cost_usd"] == pytest.approx(mtok(200_001, 6) + mtok(1000, 22.5), abs=1e-9)
    assert round(row["cost_usd"], 2) == 1.22


def test_sdk_thinking_tokens_answer(stack) -> None:
    s = stack.open_session()
    stack.configure(
        usage={
            "input_tokens": 2000,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "output_tokens": 5000,
            "reasoning_tokens": 4000,
        }
    )
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "think"}]
    ) as st:
        st.get_final_message()
    row = _row(stack, s["session_id"])
    assert (row["output_tokens"], row["reasoning_tokens"]) == (5000, 4000)
    assert row["cost_usd"] == pytest.approx(mtok(2000, 3) + mtok(5000, 15), abs=1e-9)


def test_sdk_web_search_answers(stack) -> None:
    s = stack.open_session()
    stack.configure(
        usage={
            "input_tokens": 1000,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "output_tokens": 1000,
            "web_search_requests": 3,
        }
    )
    oai = openai.OpenAI(base_url=s["openai"], api_key="sk-test-client", max_retries=0)
    oai.responses.create(model="gpt-5", input="search", tools=[{"type": "web_search"}])
    ant = anthropic.Anthropic(base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0)
    ant.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    by_api = {r["api"]: r for r in stack.rows(s["session_id"])}
    assert by_api["responses"]["web_search_requests"] == 3 and by_api["messages"]["web_search_requests"] == 3
    assert by_api["responses"]["cost_usd"] == pytest.approx(mtok(1000, 1.25) + mtok(1000, 10) + 0.03, abs=1e-9)
    assert by_api["messages"]["cost_usd"] == pytest.approx(mtok(1000, 3) + mtok(1000, 15) + 0.03, abs=1e-9)
