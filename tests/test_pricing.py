"""Pricing against the real genai-prices data (no mocks). Figures are checked by hand in comments."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmeter import pricing
from agentmeter.core.models import PriceRate, Usage
from agentmeter.pricing import PriceExplanation, explain, fallback_rate, price

GP_VERSION = genai_prices.__version__
# deps.md section 1: uncached 1200, cache writes 30000 (20000 5m + 10000 1h), cache reads 90000, output 850.
SONNET_USAGE = Usage(
    input_tokens=1200,
    cache_read_tokens=90000,
    cache_write_tokens=30000,
    cache_write_5m_tokens=20000,
    cache_write_1h_tokens=10000,
    output_tokens=850,
)
UNKNOWN_OPENAI = "gpt-7-nova"  # not in genai-prices 0.2.3


def usd(provider: str, model: str | None, usage: Usage, **kw) -> float:
    cost = price(provider, model, usage, **kw)
    assert cost.usd is not None
    return cost.usd


# --- genai-prices path ----------------------------------------------------------------------------------


def test_sonnet_45_with_5m_and_1h_writes_and_reads() -> None:
    cost = price("anthropic", "claude-sonnet-4-5-20250929", SONNET_USAGE)
    # 1200×3 + 90000×0.30 + 20000×3.75 + 10000×6 + 850×15 = 178,350 µ$ per million → $0.17835
    assert cost.usd == pytest.approx(0.17835, abs=1e-9)
    assert cost.source == "genai-prices"
    assert cost.matched_model == "claude-sonnet-4-5"
    assert cost.price_version == GP_VERSION
    assert not cost.unpriced and cost.reason is None


def test_unsplit_writes_count_as_5m_and_split_total_is_repaired() -> None:
    # No 5m figure reported: writes not marked 1h are 5-minute writes.
    no_5m = Usage(
        input_tokens=1200,
        cache_read_tokens=90000,
        cache_write_tokens=30000,
        cache_write_1h_tokens=10000,
        output_tokens=850,
    )
    assert usd("anthropic", "claude-sonnet-4-5", no_5m) == pytest.approx(0.17835, abs=1e-9)
    # Split reported but total missing: the total is at least 5m + 1h.
    no_total = Usage(
        input_tokens=1200,
        cache_read_tokens=90000,
        cache_write_5m_tokens=20000,
        cache_write_1h_tokens=10000,
        output_tokens=850,
    )
    assert usd("anthropic", "claude-sonnet-4-5", no_total) == pytest.approx(0.17835, abs=1e-9)


def test_long_context_tier_applies_to_the_whole_prompt() -> None:
    # 300k prompt: every token at the >200k tier ($6 in, $22.50 out), not just the part above 200k.
    cost = price("anthropic", "claude-sonnet-4-5-20250929", Usage(input_tokens=300_000, output_tokens=1000))
    assert cost.usd == pytest.approx(300_000 * 6 / 1e6 + 1000 * 22.5 / 1e6, abs=1e-9)  # 1.8225
    assert cost.usd != pytest.approx(300_000 * 3 / 1e6 + 1000 * 15 / 1e6)


def test_long_context_threshold_counts_cache_reads_in_the_prompt() -> None:
    # Uncached 5000 alone is small, but the prompt (5000 + 196000 read) is over 200k: tier rates.
    over = Usage(input_tokens=5000, cache_read_tokens=196_000, output_tokens=0)
    assert usd("anthropic", "claude-sonnet-4-5", over) == pytest.approx((5000 * 6 + 196_000 * 0.6) / 1e6)
    under = Usage(input_tokens=4000, cache_read_tokens=196_000)
    assert usd("anthropic", "claude-sonnet-4-5", under) == pytest.approx((4000 * 3 + 196_000 * 0.3) / 1e6)


def test_openai_cached_tokens_are_not_double_counted() -> None:
    # Wire: input_tokens 50000 of which 40000 cached, output 3000 → ours: input 10000, cache_read 40000.
    usage = Usage(input_tokens=10000, cache_read_tokens=40000, output_tokens=3000)
    cost = price("openai", "gpt-5.1-codex", usage)
    # gpt-5.1-codex is priced as gpt-5.1: 10000×1.25 + 40000×0.125 + 3000×10 = $0.0475
    assert cost.usd == pytest.approx(0.0475, abs=1e-9)
    assert cost.matched_model == "gpt-5.1"
    assert cost.source == "genai-prices"


def test_one_hour_writes_cost_2x_input_five_minute_1_25x() -> None:
    m = 1_000_000
    base = usd("anthropic", "claude-opus-4-8", Usage(input_tokens=m))
    five = usd("anthropic", "claude-opus-4-8", Usage(cache_write_tokens=m, cache_write_5m_tokens=m))
    hour = usd("anthropic", "claude-opus-4-8", Usage(cache_write_tokens=m, cache_write_1h_tokens=m))
    read = usd("anthropic", "claude-opus-4-8", Usage(cache_read_tokens=m))
    assert base == pytest.approx(5.0)
    assert five == pytest.approx(1.25 * base)
    assert hour == pytest.approx(2.0 * base)
    assert read == pytest.approx(0.1 * base)


def test_service_tier_selects_the_priority_price() -> None:
    usage = Usage(input_tokens=1_000_000)
    assert usd("openai", "gpt-4.1", usage) == pytest.approx(2.0)
    assert usd("openai", "gpt-4.1", usage, service_tier="priority") == pytest.approx(3.5)
    assert usd("openai", "gpt-4.1", usage, service_tier="default") == pytest.approx(2.0)


def test_request_time_selects_the_price_then_in_force() -> None:
    # claude-opus-4-6 had a >200k tier until 2026-03-13, then a flat price.
    usage = Usage(input_tokens=300_000)
    before = usd("anthropic", "claude-opus-4-6", usage, at=datetime(2026, 2, 1, tzinfo=UTC))
    after = usd("anthropic", "claude-opus-4-6", usage, at=datetime(2026, 4, 1, tzinfo=UTC))
    assert before == pytest.approx(300_000 * 10 / 1e6)
    assert after == pytest.approx(300_000 * 5 / 1e6)


def test_web_searches_are_charged() -> None:
    # $10 per 1,000 searches on top of the tokens.
    assert usd("anthropic", "claude-sonnet-4-5", Usage(input_tokens=1000, web_search_requests=3)) == pytest.approx(
        1000 * 3 / 1e6 + 0.03
    )


def test_zero_usage_is_zero_and_never_negative() -> None:
    assert usd("anthropic", "claude-opus-4-8", Usage()) == 0.0
    assert usd("anthropic", "claude-opus-4-8", Usage(input_tokens=-5, output_tokens=10)) >= 0.0


# --- the fuzzy-match guard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "matched"),
    [
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-opus-4-8", "claude-opus-4-8"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0"),
        ("anthropic", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest"),
        ("anthropic", "claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("openai", "gpt-5.1-codex", "gpt-5.1"),
        ("openai", "gpt-5-codex", "gpt-5"),
        ("openai", "gpt-5.1-codex-max", "gpt-5.1"),
        ("openai", "gpt-5.1-codex-mini", "gpt-5.1-codex-mini"),
        ("openai", "gpt-5-2025-08-07", "gpt-5"),
        ("openai", "codex-mini-latest", "codex-mini"),
        ("openai", "openai/gpt-5.1", "gpt-5.1"),
        ("openai", "GPT-5.1", "gpt-5.1"),
    ],
)
def test_accepted_matches(provider: str, model: str, matched: str) -> None:
    cost = price(provider, model, SONNET_USAGE)
    assert (cost.source, cost.matched_model, cost.unpriced) == ("genai-prices", matched, False)


def test_gpt_51_mini_is_not_silently_priced_as_codex_mini() -> None:
    # genai-prices 0.2.3 lists gpt-5.1-mini as an alias of gpt-5.1-codex-mini; the guard rejects it, and the
    # model is estimated (flagged) from the nearest `mini` of its family, never the provider's maximum.
    usage = Usage(input_tokens=10000, cache_read_tokens=40000, output_tokens=3000)
    cost = price("openai", "gpt-5.1-mini", usage)
    assert cost.unpriced and (cost.source, cost.matched_model) == ("estimate", "gpt-5-mini")
    assert "gpt-5.1-mini" in cost.reason and "gpt-5.1-codex-mini" in cost.reason
    assert 'set [prices."openai:gpt-5.1-mini"]' in cost.reason
    assert cost.usd == pytest.approx(usd("openai", "gpt-5-mini", usage))
    assert cost.usd < usd("openai", UNKNOWN_OPENAI, usage) / 10


def test_premium_qualifier_is_not_priced_as_its_base() -> None:
    # genai-prices matches claude-sonnet-4-5-pro by prefix to claude-sonnet-4-5; a `-pro` sibling could
    # cost many times its base, so it is unpriced rather than under-priced.
    cost = price("anthropic", "claude-sonnet-4-5-pro", SONNET_USAGE)
    assert cost.unpriced and "claude-sonnet-4-5" in cost.reason


def test_gpt_61_sol_is_in_this_genai_prices_release() -> None:
    # The reference notes call Codex's default `gpt-6.1-sol` unpriced; genai-prices 0.2.3 now prices it.
    cost = price("openai", "gpt-6.1-sol", Usage(input_tokens=100_000))  # under its 272k tier: $2/M
    assert (cost.source, cost.matched_model, cost.usd) == ("genai-prices", "gpt-6.1-sol", pytest.approx(0.2))


# --- overrides ------------------------------------------------------------------------------------------


def test_override_wins_and_applies_by_matched_id_with_default_cache_multipliers() -> None:
    overrides = {"anthropic:claude-sonnet-4-5": PriceRate(input=2.0, output=10.0)}
    cost = price("anthropic", "claude-sonnet-4-5-20250929", SONNET_USAGE, overrides=overrides)
    # 1200×2 + 90000×0.2 (0.1×) + 20000×2.5 (1.25×) + 10000×4 (2×) + 850×10 = $0.1189
    assert cost.usd == pytest.approx(0.1189, abs=1e-9)
    assert (cost.source, cost.matched_model, cost.unpriced) == ("override", "claude-sonnet-4-5", False)


def test_override_matches_the_id_genai_prices_matched() -> None:
    # `claude-3-7-sonnet-20250219` only reaches `claude-3-7-sonnet-latest` through genai-prices.
    overrides = {"anthropic:claude-3-7-sonnet-latest": PriceRate(input=1.0, output=1.0)}
    cost = price("anthropic", "claude-3-7-sonnet-20250219", Usage(input_tokens=10**6), overrides=overrides)
    assert (cost.source, cost.usd) == ("override", pytest.approx(1.0))


def test_override_exact_name_beats_matched_id_and_explicit_cache_rates_are_used() -> None:
    overrides = {
        "anthropic:claude-sonnet-4-5": PriceRate(input=2.0, output=10.0),
        "Anthropic:Claude-Sonnet-4-5-20250929": PriceRate(
            input=1.0, output=1.0, cache_read=0.5, cache_write=3.0, cache_write_1h=4.0
        ),
    }
    cost = price("anthropic", "claude-sonnet-4-5-20250929", SONNET_USAGE, overrides=overrides)
    assert cost.usd == pytest.approx((1200 + 90000 * 0.5 + 20000 * 3 + 10000 * 4 + 850) / 1e6)
    assert cost.matched_model == "Claude-Sonnet-4-5-20250929"


def test_override_prices_a_model_genai_prices_does_not_know() -> None:
    overrides = {f"openai:{UNKNOWN_OPENAI}": PriceRate(input=4.0, output=20.0)}
    cost = price("openai", f"{UNKNOWN_OPENAI}-2026-11-01", Usage(output_tokens=10**6), overrides=overrides)
    assert (cost.source, cost.unpriced, cost.usd) == ("override", False, pytest.approx(20.0))


def test_override_for_the_rejected_match_does_not_apply() -> None:
    overrides = {"openai:gpt-5.1-codex-mini": PriceRate(input=0.25, output=2.0)}
    assert price("openai", "gpt-5.1-mini", Usage(input_tokens=1000), overrides=overrides).unpriced


# --- unknown models -------------------------------------------------------------------------------------


def test_unknown_model_is_never_free() -> None:
    usage = Usage(input_tokens=1000, output_tokens=100)
    cost = price("openai", UNKNOWN_OPENAI, usage)
    assert cost.unpriced and cost.source == "fallback"
    assert cost.usd is not None and cost.usd > 0
    assert f"openai:{UNKNOWN_OPENAI}" in cost.reason and GP_VERSION in cost.reason
    rate = fallback_rate("openai")
    assert cost.usd == pytest.approx((1000 * rate.input + 100 * rate.output) / 1e6)


def test_unknown_model_uses_the_configured_rate() -> None:
    usage = Usage(input_tokens=1000, cache_read_tokens=10000, output_tokens=100)
    cost = price("openai", UNKNOWN_OPENAI, usage, unknown_model=PriceRate(input=20.0, output=80.0))
    assert cost.unpriced and "unknown_model" in cost.reason
    assert cost.usd == pytest.approx((1000 * 20 + 10000 * 2 + 100 * 80) / 1e6)


def test_missing_model_is_unpriced() -> None:
    cost = price("anthropic", None, Usage(input_tokens=1000))
    assert cost.unpriced and cost.usd is not None and cost.usd > 0 and "no model" in cost.reason


def test_fallback_rates_are_the_providers_maxima() -> None:
    anthropic, openai = fallback_rate("anthropic"), fallback_rate("openai")
    assert anthropic.input >= 15.0 and anthropic.output >= 75.0 and anthropic.cache_write_1h >= 30.0
    assert openai.input >= 150.0 and openai.output >= 600.0
    # An unknown provider gets the bucket-wise maximum of both.
    acme = fallback_rate("acme")
    for field in ("input", "output", "cache_read", "cache_write", "cache_write_1h"):
        assert getattr(acme, field) == max(getattr(anthropic, field), getattr(openai, field))
    cost = price("acme", "some-model", Usage(input_tokens=1000))
    assert cost.unpriced and "unknown provider" in cost.reason
    assert cost.usd == pytest.approx(1000 * acme.input / 1e6)


# --- explain --------------------------------------------------------------------------------------------


def test_explain_known_model_with_long_context_tier() -> None:
    ex = explain("anthropic", "claude-sonnet-4-5-20250929")
    assert isinstance(ex, PriceExplanation)
    assert (ex.source, ex.matched_model, ex.price_version, ex.unpriced) == (
        "genai-prices",
        "claude-sonnet-4-5",
        GP_VERSION,
        False,
    )
    assert (ex.input, ex.output, ex.cache_read, ex.cache_write, ex.cache_write_1h) == pytest.approx(
        (3.0, 15.0, 0.3, 3.75, 6.0)
    )
    assert ex.long_context_threshold == 200_000
    assert ex.long_context is not None and (ex.long_context.input, ex.long_context.output) == (6.0, 22.5)
    assert "claude-sonnet-4-5" in ex.why and "200,000" in ex.why


def test_explain_openai_model_without_cache_write_price() -> None:
    ex = explain("openai", "gpt-5.1-codex")
    # OpenAI has no separate cache-write price: writes bill as input.
    assert (ex.matched_model, ex.input, ex.cache_read, ex.cache_write) == ("gpt-5.1", 1.25, 0.125, 1.25)
    assert ex.long_context_threshold is None


def test_explain_overridden_model() -> None:
    overrides = {"anthropic:claude-opus-4-8": PriceRate(4.0, 20.0)}
    ex = explain("anthropic", "claude-opus-4-8", overrides=overrides)
    assert (ex.source, ex.matched_model, ex.unpriced) == ("override", "claude-opus-4-8", False)
    assert (ex.input, ex.output, ex.cache_read, ex.cache_write, ex.cache_write_1h) == pytest.approx(
        (4.0, 20.0, 0.4, 5.0, 8.0)
    )
    assert 'prices."anthropic:claude-opus-4-8"' in ex.why


def test_explain_unknown_model() -> None:
    ex = explain("openai", UNKNOWN_OPENAI)
    rate = fallback_rate("openai")
    assert (ex.source, ex.matched_model, ex.unpriced) == ("fallback", None, True)
    assert (ex.input, ex.output) == (rate.input, rate.output)
    assert UNKNOWN_OPENAI in ex.why and "most expensive" in ex.why
    configured = explain("openai", UNKNOWN_OPENAI, unknown_model=PriceRate(input=20.0, output=80.0))
    assert (configured.input, configured.cache_read, configured.unpriced) == (20.0, 2.0, True)


def test_explain_rejected_fuzzy_match() -> None:
    ex = explain("openai", "gpt-5.1-mini")
    assert ex.unpriced and "gpt-5.1-codex-mini" in ex.why


# --- rate cards: the cached path equals genai-prices ------------------------------------------------------

# Real models of every kind the cards handle: flat prices, conditional (dated) prices, a date suffix,
# codex-as-base, long-context tiers (sonnet-4-5 at 200k, gpt-5.4 at 272k, gemini-2.5-pro at 200k with its own
# web-search rate), a rejected fuzzy match, a premium qualifier, an unknown model and provider, and
# time-of-day prices (deepseek), which never get a card.
CARD_MODELS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-opus-4-1"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-opus-4-6"),
    ("openai", "gpt-5.1-codex"),
    ("openai", "gpt-5"),
    ("openai", "gpt-5-2025-08-07"),
    ("openai", "gpt-4o-mini"),
    ("openai", "o3"),
    ("openai", "gpt-5.4"),
    ("google", "gemini-2.5-pro"),
    ("openai", "gpt-5.1-mini"),
    ("anthropic", "claude-sonnet-4-5-pro"),
    ("openai", UNKNOWN_OPENAI),
    ("acme", "some-model"),
    ("deepseek", "deepseek-chat"),
]
# Prompt sizes around every tier threshold in CARD_MODELS, so both sides of each are drawn often.
EDGES = [0, 1, 199_999, 200_000, 200_001, 271_999, 272_000, 272_001, 10**12, 10**12 + 1]
counts = st.one_of(st.integers(0, 3_000), st.integers(0, 300_000), st.sampled_from(EDGES), st.integers(-5, 0))
usages = st.builds(
    Usage,
    input_tokens=counts,
    cache_read_tokens=counts,
    cache_write_tokens=counts,
    cache_write_5m_tokens=counts,
    cache_write_1h_tokens=counts,
    output_tokens=counts,
    web_search_requests=st.one_of(st.integers(0, 3), st.sampled_from([0, 1000, 10**12 + 1])),
)
rates = st.builds(
    PriceRate,
    input=st.sampled_from([0.1, 3.0, 7.7]),
    output=st.sampled_from([1.0, 15.0]),
    cache_read=st.sampled_from([None, 0.3]),
)


@pytest.mark.parametrize(("provider", "model"), CARD_MODELS)
@settings(max_examples=150, deadline=None)
@given(
    usage=usages,
    override=st.sampled_from([None, "requested", "matched", "other"]),
    unknown_model=st.one_of(st.none(), rates),
    rate=rates,
)
def test_cached_price_equals_genai_prices(provider, model, usage, override, unknown_model, rate) -> None:
    matched = price(provider, model, Usage()).matched_model or model
    key = {None: None, "requested": model, "matched": matched, "other": "claude-nothing-9"}[override]
    overrides = {f"{provider}:{key}": rate} if key else {}
    kw = {"overrides": overrides, "unknown_model": unknown_model}
    assert price(provider, model, usage, **kw) == pricing._uncached_price(provider, model, usage, **kw)


@pytest.mark.parametrize(("provider", "model"), CARD_MODELS)
@pytest.mark.parametrize(
    "usage",
    [
        Usage(input_tokens=30000, output_tokens=800, cache_read_tokens=90000),
        Usage(input_tokens=200_000, output_tokens=5),  # exactly at the sonnet-4-5 / gemini-2.5-pro threshold
        Usage(input_tokens=199_999, cache_write_tokens=1, cache_write_1h_tokens=1, output_tokens=5),
        Usage(input_tokens=199_999, cache_read_tokens=2),  # one over
        Usage(input_tokens=272_000, web_search_requests=3),
        Usage(cache_read_tokens=272_001),
        Usage(input_tokens=1, cache_read_tokens=1, cache_write_tokens=1, output_tokens=1),  # rounds to 1e-9
        Usage(input_tokens=True, output_tokens=10),  # values genai-prices refuses or converts
        Usage(input_tokens=1500.5, cache_read_tokens=2.25),
        Usage(output_tokens=10**12 + 1),
        Usage(input_tokens=-5, cache_write_5m_tokens=-3, output_tokens=-1, web_search_requests=-2),
    ],
)
def test_cached_price_equals_genai_prices_at_the_edges(provider, model, usage) -> None:
    assert price(provider, model, usage) == pricing._uncached_price(provider, model, usage)


def test_cards_are_learned_for_priced_and_refused_names_and_not_for_clock_dependent_prices() -> None:
    sonnet = pricing._card("anthropic", "claude-sonnet-4-5-20250929")
    assert sonnet is not None and (sonnet.matched, sonnet.max_prompt) == ("claude-sonnet-4-5", 200_000)
    assert pricing._card("openai", "gpt-5.1-codex").matched == "gpt-5.1"
    assert "gpt-5.1-codex-mini" in pricing._card("openai", "gpt-5.1-mini").miss
    assert "no price" in pricing._card("openai", UNKNOWN_OPENAI).miss
    # deepseek has off-peak (time-of-day) prices: the price depends on the clock, so no card.
    deepseek = pricing._card("deepseek", "deepseek-chat")
    assert (deepseek.matched, deepseek.miss) == (None, None)


def test_a_learned_card_prices_without_genai_prices(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no compact table (test_pricing_compact): the cards
    usage = Usage(input_tokens=30000, output_tokens=800, cache_read_tokens=90000)
    expected = price("anthropic", "claude-sonnet-4-5-20250929", usage)
    price("openai", "gpt-5.1-mini", usage)

    def no_calls(*args, **kwargs):
        raise AssertionError("genai-prices was called on the cached path")

    monkeypatch.setattr(genai_prices, "calc_price", no_calls)
    assert price("anthropic", "claude-sonnet-4-5-20250929", usage) == expected
    assert price("openai", "gpt-5.1-mini", usage).unpriced  # a refused name is remembered too
    with pytest.raises(AssertionError):  # over the long-context threshold: genai-prices prices it
        price("anthropic", "claude-sonnet-4-5-20250929", Usage(input_tokens=200_001))


def test_cards_are_bounded() -> None:
    maxsize = pricing._learned_card.cache_info().maxsize
    assert maxsize is not None and maxsize <= 1024
    for i in range(maxsize + 50):
        assert price("openai", f"agent-made-up-model-{i}", Usage(input_tokens=1)).unpriced
    assert pricing._learned_card.cache_info().currsize <= maxsize
    # Evicted cards are learned again, with the same answers.
    assert price("openai", "agent-made-up-model-0", Usage(input_tokens=1)).unpriced
    assert price("anthropic", "claude-sonnet-4-5", SONNET_USAGE).usd == pytest.approx(0.17835, abs=1e-9)


def test_replaced_genai_prices_data_is_not_answered_from_old_cards(monkeypatch, tmp_path) -> None:
    # `agentmeter prices update` installs new genai-prices data (UpdatePrices); cards of the old data must not
    # answer for it. (The data is replaced in process here, which the compact table, keyed by the cache file,
    # does not see: no table for this test. test_pricing_compact covers the table after `prices update`.)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    usage = Usage(input_tokens=100_000)
    assert usd("anthropic", "claude-sonnet-4-5", usage) == pytest.approx(0.3)
    bundled = data_snapshot.get_snapshot()
    anthropic = next(p for p in bundled.providers if p.id == "anthropic")
    sonnet = next(m for m in anthropic.models if m.id == "claude-sonnet-4-5")
    cheaper = replace(sonnet, prices=ModelPrice(input_mtok=Decimal(1), output_mtok=Decimal(2)))
    data_snapshot.set_custom_snapshot(
        data_snapshot.DataSnapshot(providers=[replace(anthropic, models=[cheaper])], from_auto_update=True)
    )
    try:
        assert usd("anthropic", "claude-sonnet-4-5", usage) == pytest.approx(0.1)
    finally:
        data_snapshot.set_custom_snapshot(None)
    assert usd("anthropic", "claude-sonnet-4-5", usage) == pytest.approx(0.3)


# --- import cost ----------------------------------------------------------------------------------------


def test_importing_pricing_does_not_import_genai_prices() -> None:
    code = "import sys, agentmeter.pricing; sys.exit('genai_prices' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
