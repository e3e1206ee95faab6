"""The config loader on hostile files: a Config or a ConfigError naming the file, never anything else."""

from __future__ import annotations

import datetime as dt
import math

import tomli_w
from hypothesis import example, given
from hypothesis import strategies as st

from agentmeter.core.errors import ConfigError
from agentmeter.home.config import load_config

from .conftest import TRIED, examples

SECTIONS = {
    "identity": ["developer", "team", "cost_center"],
    "budget": [
        "timezone",
        "daily_usd",
        "weekly_usd",
        "monthly_usd",
        "daily_tokens",
        "weekly_tokens",
        "monthly_tokens",
        "alert_at",
        "downgrade_at",
        "block_at",
        "easy_turn_tokens",
        "retry_cap",
        "enforce_subscription",
        "pinned",
        "agents",
    ],
    "cascade": ["anthropic", "openai"],
    "alerts": ["desktop", "webhook"],
    "prices": ["anthropic:claude-opus-4-8", "unknown_model", "nocolon", "openai:gpt-5.1"],
    "upstreams": ["anthropic", "openai", "chatgpt"],
    "sync": ["collector", "otlp_endpoint", "interval_seconds"],
    "proxy": ["port"],
    "shell": ["agents"],
}
values = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=True),
        st.text(max_size=30),
        st.sampled_from(["local", "UTC", "Europe/Berlin", "../../etc/passwd", "x" * 300, "https://a", "Mars/Olympus"]),
        st.datetimes(max_value=dt.datetime(9999, 1, 1)),
        st.dates(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["input", "output", "cache_read", "daily_usd", "x"]), inner, max_size=4),
    ),
    max_leaves=10,
)


@st.composite
def configs(draw) -> dict:
    doc = {}
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=5, unique=True)):
        keys = draw(st.lists(st.sampled_from(SECTIONS[section]), max_size=5, unique=True))
        doc[section] = {k: draw(values) for k in keys}
    if draw(st.booleans()):
        doc[draw(st.sampled_from(sorted(SECTIONS)))] = draw(values)  # a section that is not a table
    return doc


def load(path, raw: bytes) -> None:
    path.write_bytes(raw)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        assert str(path) in exc.message and exc.hint
        return
    for name in ("alert_at", "downgrade_at", "block_at"):
        assert not math.isnan(getattr(cfg.budget, name))
    for v in vars(cfg.budget.caps).values():
        assert v is None or not math.isnan(v)


@examples(150, 10000)
@given(configs())
@example({"budget": {"timezone": "x" * 300}})  # found by this test: a name too long to be a file
@example({"budget": {"downgrade_at": math.nan, "daily_usd": math.nan}})  # TOML has nan; it is no number
def test_structured_configs_load_or_say_why(tmp_path_factory, doc):
    TRIED["config files (structured)"] += 1
    load(tmp_path_factory.mktemp("c") / "config.toml", tomli_w.dumps(doc).encode())


@examples(100, 5000)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(alphabet=st.sampled_from("[]=\"'.,:#\n\\ abcdeu0123456789_-+etruflsinf"), max_size=120).map(str.encode),
    )
)
def test_arbitrary_bytes_load_or_say_why(tmp_path_factory, raw):
    TRIED["config files (raw)"] += 1
    load(tmp_path_factory.mktemp("c") / "config.toml", raw)
