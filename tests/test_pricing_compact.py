"""The daemon's compact price table (pricing/compact.py) prices exactly as genai-prices does, and a daemon
that has it never loads genai-prices, pydantic or httpx."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from agentmeter import pricing
from agentmeter.core.clock import SystemClock
from agentmeter.core.models import PriceRate, Usage
from agentmeter.pricing import compact, compact_build, data, tiers


@pytest.fixture(scope="module")
def table():
    raw = compact_build.build(SystemClock().now())
    compact_build.write(raw)
    return compact.Table(json.loads(json.dumps(raw))), raw


def _grid(bounds: list[int]) -> list[Usage]:
    """Token counts on both sides of every prompt threshold, each bucket alone and mixed."""
    out = [Usage(), Usage(input_tokens=1), Usage(output_tokens=1), Usage(web_search_requests=3)]
    for p in sorted({1000, 150_000, 10**6, 3 * 10**6, *bounds, *(b + 1 for b in bounds), *(b - 1 for b in bounds)}):
        if p <= 0:
            continue
        out += [
            Usage(input_tokens=p, output_tokens=777),
            Usage(cache_read_tokens=p),
            Usage(cache_write_tokens=p),
            Usage(cache_write_tokens=p, cache_write_1h_tokens=p // 2),
            Usage(
                input_tokens=p // 4,
                cache_read_tokens=p - p // 4 - p // 8 - p // 16,
                cache_write_tokens=p // 8 + p // 16,
                cache_write_1h_tokens=p // 16,
                output_tokens=4321,
                web_search_requests=2,
            ),
        ]
    return out


def _compact(tab, provider, model, usage, tier, at=None):
    return pricing._compact_price(tab, provider, model, usage, {}, None, tier, at)


def test_every_model_and_tier_prices_exactly_as_genai_prices(table):
    tab, raw = table
    checked = 0
    for pid, p in raw["providers"].items():
        for m in p["models"]:
            for tier_key, entry in m["tiers"].items():
                tier = tier_key or None
                bounds = [piece[0] for piece in entry["pieces"] if piece[0] is not None]
                for u in _grid(bounds):
                    got = _compact(tab, pid, m["id"], u, tier)
                    want = pricing._uncached_price(pid, m["id"], u, tier=tier)
                    if not pricing._same_model(m["id"], want.matched_model or m["id"]) or want.unpriced:
                        # the id resolves to another model first in genai-prices' order: the table must agree
                        assert got is None or got == want, (pid, m["id"], tier, u)
                        continue
                    assert got == want, (pid, m["id"], tier, u, got, want)
                    checked += 1
    assert checked > 20_000


@pytest.mark.parametrize(
    "provider,model",
    [
        ("anthropic", "claude-sonnet-4-5-20250929"),
        ("anthropic", "claude-opus-4-1-20250805"),
        ("anthropic", "claude-3-5-haiku-latest"),
        ("anthropic", "claude-sonnet-4-0"),
        ("anthropic", "claude-zephyr-9"),  # unknown: estimated from its family
        ("anthropic", "claude-sonnet-4-5-pro"),  # rejected by the fuzzy-match guard
        ("openai", "gpt-5.1-codex"),
        ("openai", "gpt-5.1-mini"),
        ("openai", "gpt-5-codex"),
        ("openai", "gpt-4o-2024-08-06"),
        ("openai", "gpt-5.2-20251211"),
        ("openai", "openai/gpt-5"),
        ("openai", "no-such-model"),
        ("google", "gemini-2.5-pro"),
        ("google", "models/gemini-2.5-flash"),
    ],
)
def test_names_as_agents_send_them_price_the_same(table, provider, model):
    tab, _ = table
    at = datetime(2026, 12, 1, tzinfo=UTC)
    for tier in (None, *tiers.offered(provider)):
        for u in _grid([200_000, 272_000]):
            got = _compact(tab, provider, model, u, tier, at)
            want = pricing._uncached_price(provider, model, u, tier=tier, at=at)
            assert got is None or got == want, (model, tier, u, got, want)
            if tier is None:
                assert got is not None, (model, u)  # the common case never needs genai-prices


def test_vendor_list_prices_by_hand(table):
    """Anthropic's pricing page: Sonnet 4.5 $3 / $15 per MTok, cache read $0.30, 5m write $3.75, 1h write $6;
    over 200K prompt tokens every token at $6 / $22.50 (reads $0.60, writes $7.50 / $12). OpenAI: gpt-5
    $1.25 in / $10 out, cached input $0.125."""
    tab, _ = table
    M = 1_000_000
    under = Usage(input_tokens=100_000, cache_read_tokens=50_000, cache_write_tokens=30_000, output_tokens=2_000)
    cost = _compact(tab, "anthropic", "claude-sonnet-4-5", under, None)
    assert cost.usd == pytest.approx((100_000 * 3 + 50_000 * 0.3 + 30_000 * 3.75 + 2_000 * 15) / M, abs=1e-9)
    over = Usage(input_tokens=150_000, cache_read_tokens=50_000, cache_write_tokens=1_000, output_tokens=2_000)
    cost = _compact(tab, "anthropic", "claude-sonnet-4-5", over, None)
    assert cost.usd == pytest.approx((150_000 * 6 + 50_000 * 0.6 + 1_000 * 7.5 + 2_000 * 22.5) / M, abs=1e-9)
    at_200k = Usage(input_tokens=150_000, cache_read_tokens=50_000, output_tokens=0)  # exactly 200K: base rates
    assert _compact(tab, "anthropic", "claude-sonnet-4-5", at_200k, None).usd == pytest.approx(
        (150_000 * 3 + 50_000 * 0.3) / M, abs=1e-9
    )
    one_hour = Usage(input_tokens=10, cache_write_tokens=1_000, cache_write_1h_tokens=1_000)
    assert _compact(tab, "anthropic", "claude-sonnet-4-5", one_hour, None).usd == pytest.approx(
        (10 * 3 + 1_000 * 6) / M, abs=1e-9
    )
    gpt = Usage(input_tokens=10_000, cache_read_tokens=90_000, output_tokens=1_000)
    assert _compact(tab, "openai", "gpt-5", gpt, None).usd == pytest.approx(
        (10_000 * 1.25 + 90_000 * 0.125 + 1_000 * 10) / M, abs=1e-9
    )


def test_overrides_and_unknown_model_rate_still_win(table):
    tab, _ = table
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    rate = PriceRate(1.0, 2.0)
    got = pricing._compact_price(
        tab, "anthropic", "claude-sonnet-4-5-20250929", u, {"anthropic:claude-sonnet-4-5": rate}, None, None, None
    )
    assert got is not None and (got.source, got.usd) == ("override", 3.0)  # the key names the matched model
    assert data.compact_table() is not None
    for key in ("anthropic:claude-sonnet-4-5", "anthropic:claude-sonnet-4-5-20250929"):
        got = pricing.price("anthropic", "claude-sonnet-4-5-20250929", u, overrides={key: rate})
        assert (got.source, got.usd) == ("override", 3.0)
    got = pricing._compact_price(tab, "openai", "no-such-model", u, {}, PriceRate(5.0, 5.0), None, None)
    assert got.unpriced and got.usd == 10.0


def test_a_stale_or_foreign_table_is_never_used(tmp_path):
    key = compact.data_key(None)
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"key": {**key, "genai_prices": "0.0.1"}, "version": "x", "providers": {}}))
    assert compact.load(path, key) is None
    path.write_text(json.dumps({"key": {**key, "corrections": "other"}, "version": "x", "providers": {}}))
    assert compact.load(path, key) is None


def test_prices_update_writes_a_private_table_for_the_new_data(tmp_path):
    from agentmeter.home.paths import get_paths
    from test_prices_update import price_data

    good = tmp_path / "good.json"
    good.write_text(json.dumps(price_data(zephyr_input=2.0)))
    r = subprocess.run(
        [sys.executable, "-m", "agentmeter", "prices", "update", "--file", str(good)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert r.returncode == 0, r.stderr
    path = get_paths().data_dir / "prices.compact.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tab = data.compact_table()
    assert tab is not None and tab.find("anthropic", "claude-zephyr-9")["id"] == "claude-zephyr-9"
    cost = pricing.price("anthropic", "claude-zephyr-9", Usage(input_tokens=1_000_000))
    assert (cost.source, cost.usd, cost.unpriced) == ("genai-prices", 2.0, False)


_PROBE = r"""
import sys, asyncio
from agentmeter import pricing
from agentmeter.core.clock import SystemClock
from agentmeter.core.models import Usage
pricing.warm()
c = pricing.price("anthropic", "claude-sonnet-4-5-20250929", Usage(input_tokens=300_000, output_tokens=10))
c2 = pricing.price("openai", "gpt-5.4-codex-nano", Usage(input_tokens=1, output_tokens=1), tier="priority")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("genai_prices", "pydantic", "httpx", "pydantic_core"))
print(c.usd, c.source, heavy)
"""


def test_warm_prices_without_loading_genai_prices_pydantic_or_httpx():
    r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=os.environ.copy())
    assert r.returncode == 0, r.stderr
    usd, source, heavy = r.stdout.split(" ", 2)
    assert source == "genai-prices" and float(usd) == pytest.approx(300_000 * 6 / 1e6 + 10 * 22.5 / 1e6)
    assert heavy.strip() == "[]", heavy
