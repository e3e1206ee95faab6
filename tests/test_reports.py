"""agentmeter report / export: rollup totals against the requests table, calendar boundaries in a time
zone, CSV / JSONL / FOCUS round trips, the JSON schema, the terminal chart and the HTML page in Chromium."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import subprocess
import sys
import urllib.request
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agentmeter.commands import export as exports
from agentmeter.commands import report as reports
from agentmeter.core.clock import SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from agentmeter.ledger.migrations import TOKEN_COLUMNS
from agentmeter.pricing import focus, price
from conftest import make_stack, run_cli

NY = ZoneInfo("America/New_York")
BUCKETS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
BILLABLE = "NOT (status IN ('refused', 'passthrough') AND " + " + ".join(TOKEN_COLUMNS) + " = 0)"
CAP = 0.5
WHOLE = ["--since", "2025-03-01", "--until", "2025-05-01"]

# (local New York time, provider, model, agent, repo, branch, session, usage, subscription, status)
HISTORY = [
    (
        (2025, 3, 24, 10),
        "anthropic",
        "claude-sonnet-4-5",
        "claude",
        "acme/api",
        "main",
        "s1",
        {
            "input_tokens": 1200,
            "cache_read_tokens": 18000,
            "cache_write_tokens": 1204,
            "cache_write_5m_tokens": 1204,
            "output_tokens": 580,
        },
        False,
        "ok",
    ),
    (
        (2025, 3, 24, 11),
        "anthropic",
        "claude-sonnet-4-5",
        "cursor",
        "acme/api",
        "main",
        "s4",
        {"input_tokens": 300, "output_tokens": 90},
        False,
        "ok",
    ),
    (
        (2025, 3, 24, 12),
        "openai",
        "gpt-5.1",
        "codex",
        "acme/api",
        "feat-x",
        "s2",
        {"input_tokens": 5000, "cache_read_tokens": 40000, "output_tokens": 2100, "reasoning_tokens": 900},
        False,
        "ok",
    ),
    (
        (2025, 3, 26, 9),
        "anthropic",
        "claude-haiku-4-5",
        "claude",
        "acme/web",
        "main",
        "s3",
        {"input_tokens": 800, "cache_read_tokens": 9000, "output_tokens": 400},
        False,
        "ok",
    ),
    (
        (2025, 3, 28, 15),
        "anthropic",
        "claude-sonnet-4-5",
        "claude",
        "acme/web",
        "main",
        "s3",
        {
            "input_tokens": 2000,
            "cache_read_tokens": 30000,
            "cache_write_tokens": 500,
            "cache_write_5m_tokens": 500,
            "output_tokens": 1500,
        },
        True,
        "ok",
    ),
    # Sunday 23:00 and Monday 00:30 in New York: ISO weeks 13 and 14.
    (
        (2025, 3, 30, 23),
        "anthropic",
        "claude-sonnet-4-5",
        "claude",
        "acme/api",
        "main",
        "s1",
        {"input_tokens": 100, "cache_read_tokens": 20000, "output_tokens": 50},
        False,
        "ok",
    ),
    (
        (2025, 3, 31, 0, 30),
        "openai",
        "gpt-5.1",
        "codex",
        "acme/api",
        "feat-x",
        "s2",
        {"input_tokens": 700, "output_tokens": 300},
        False,
        "ok",
    ),
    # 23:30 on 31 March in New York is 03:30 on 1 April in UTC.
    (
        (2025, 3, 31, 23, 30),
        "anthropic",
        "claude-sonnet-4-5",
        "claude",
        "acme/api",
        "main",
        "s1",
        {"input_tokens": 400, "cache_read_tokens": 21000, "output_tokens": 120},
        False,
        "ok",
    ),
    (
        (2025, 4, 1, 8),
        "anthropic",
        "mystery-model-9",
        "claude",
        "acme/web",
        "main",
        "s3",
        {"input_tokens": 1000, "output_tokens": 100},
        False,
        "ok",
    ),
    (
        (2025, 4, 2, 10),
        "openai",
        "gpt-5.1",
        "codex",
        "acme/web",
        "main",
        "s2",
        {"input_tokens": 900, "output_tokens": 200, "web_search_requests": 3},
        False,
        "ok",
    ),
    ((2025, 4, 2, 11), "openai", "gpt-5.1", "codex", "acme/web", "main", "s2", {}, False, "refused"),
    (
        (2025, 4, 3, 9),
        "anthropic",
        "claude-sonnet-4-5",
        "claude",
        "acme/api",
        "main",
        "s1",
        {"input_tokens": 50, "cache_write_tokens": 3000, "cache_write_1h_tokens": 3000, "output_tokens": 75},
        False,
        "ok",
    ),
    (
        (2025, 4, 3, 10),
        "anthropic",
        "claude-haiku-4-5",
        None,
        None,
        None,
        None,
        {"input_tokens": 10, "output_tokens": 10},
        False,
        "ok",
    ),
]


def ms(*parts: int, tz=NY) -> int:
    return int(datetime(*parts, tzinfo=tz).timestamp() * 1000)


def write_config(home: Path, extra: str = "") -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[identity]\ndeveloper = "dev@example.com"\nteam = "payments"\n\n'
        f'[budget]\ntimezone = "America/New_York"\ndaily_usd = {CAP}\n{extra}'
    )


@pytest.fixture
def history(home) -> Path:
    """A multi-day ledger written the way the daemon writes it (rollup in the configured zone)."""
    write_config(home)
    path = get_paths().ledger
    lg = open_ledger(path, tz=NY)
    for sid, agent in (("s1", "claude"), ("s2", "codex"), ("s3", "claude"), ("s4", "cursor")):
        lg.create_session(
            {
                "id": sid,
                "token_hash": "h" + sid,
                "agent": agent,
                "developer": "dev@example.com",
                "started_at": ms(2025, 3, 20, 0),
            }
        )
    for i, (when, provider, model, agent, repo, branch, sid, usage, sub, status) in enumerate(HISTORY):
        u = Usage(**usage)
        cost = price(provider, model, u) if status == "ok" else None
        lg.insert_request(
            RequestRecord(
                request_id=f"r{i}",
                session_id=sid,
                started_at_ms=ms(*when),
                provider=provider,
                api="messages" if provider == "anthropic" else "responses",
                method="POST",
                path="/v1/x",
                model_requested=model,
                model_used=model if status == "ok" else None,
                stream=True,
                status=status,
                http_status=200 if status == "ok" else 429,
                usage=u,
                cost_usd=cost.usd if cost else None,
                price_source=cost.source if cost else "none",
                unpriced=bool(cost and cost.unpriced),
                subscription=sub,
                agent=agent,
                repo=repo,
                branch=branch,
                decision="allow" if status == "ok" else "refuse",
            )
        )
    lg.close()
    return path


def ledger_sums(path: Path, where: str = "1") -> dict:
    """The ground truth, straight from the requests table."""
    lg = open_ledger(path, readonly=True)
    try:
        sums = ", ".join(f"COALESCE(SUM({c}), 0) AS {c}" for c in TOKEN_COLUMNS)
        row = lg.conn.execute(
            f"SELECT COUNT(*) AS requests, {sums}, COALESCE(SUM(cost_usd), 0) AS cost_usd, "
            f"COALESCE(SUM(CASE WHEN subscription = 1 THEN cost_usd ELSE 0 END), 0) AS subscription_cost_usd, "
            f"COALESCE(SUM(unpriced), 0) AS unpriced_requests FROM requests WHERE {BILLABLE} AND {where}"
        ).fetchone()
        return dict(row)
    finally:
        lg.close()


def report_json(*args: str, env: dict | None = None) -> dict:
    got = run_cli("report", "--format", "json", *args, env=env)
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


def assert_totals(got: dict, want: dict) -> None:
    for k in ("requests", *TOKEN_COLUMNS, "unpriced_requests"):
        assert got[k] == want[k], k
    for k in ("cost_usd", "subscription_cost_usd"):
        assert math.isclose(got[k], want[k], abs_tol=1e-9), k
    assert math.isclose(got["billed_cost_usd"], want["cost_usd"] - want["subscription_cost_usd"], abs_tol=1e-9)


# --- totals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", reports.GROUPINGS)
def test_every_grouping_adds_up_to_the_requests_table(history, by):
    got = report_json("--by", by, *WHOLE)
    assert got["source"] == ("rollup" if by in ("day", "week", "month", "agent", "model", "repo") else "requests")
    assert_totals(got["totals"], ledger_sums(history))
    # the rows themselves, not just the totals line, add up
    summed = {k: sum(r[k] for r in got["rows"]) for k in ("requests", *TOKEN_COLUMNS, "cost_usd")}
    assert summed["requests"] == got["totals"]["requests"]
    assert math.isclose(summed["cost_usd"], got["totals"]["cost_usd"], abs_tol=1e-9)


def test_rollup_rows_match_requests_per_group(history):
    by_model = {(r["provider"], r["key"]): r for r in report_json("--by", "model", *WHOLE)["rows"]}
    assert set(by_model) == {
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("openai", "gpt-5.1"),
        ("anthropic", "mystery-model-9"),
    }
    for (provider, model), row in by_model.items():
        assert_totals(row, ledger_sums(history, f"provider = '{provider}' AND model_used = '{model}'"))
    assert by_model[("anthropic", "mystery-model-9")]["unpriced_requests"] == 1
    by_agent = {r["key"]: r for r in report_json("--by", "agent", *WHOLE)["rows"]}
    assert_totals(by_agent["codex"], ledger_sums(history, "agent = 'codex'"))
    assert_totals(by_agent[""], ledger_sums(history, "agent IS NULL"))
    sessions = {r["key"]: r for r in report_json("--by", "session", *WHOLE)["rows"]}
    assert sessions["s2"]["agent"] == "codex" and sessions["s2"]["first_at"] == "2025-03-24T16:00:00.000Z"
    assert_totals(sessions["s2"], ledger_sums(history, "session_id = 's2'"))
    branches = {(r["repo"], r["key"]): r for r in report_json("--by", "branch", *WHOLE)["rows"]}
    assert_totals(branches[("acme/api", "feat-x")], ledger_sums(history, "branch = 'feat-x'"))


def test_subscription_cost_is_split_out(history):
    total = report_json("--by", "month", *WHOLE)["totals"]
    want = ledger_sums(history, "subscription = 1")["cost_usd"]
    assert want > 0 and math.isclose(total["subscription_cost_usd"], want, abs_tol=1e-12)
    assert total["cache_hit_rate"] == round(
        total["cache_read_tokens"] / (total["input_tokens"] + total["cache_read_tokens"] + total["cache_write_tokens"]),
        4,
    )


def test_since_until_bound_the_window(history):
    got = report_json("--by", "day", "--since", "2025-03-26", "--until", "2025-03-31")
    assert [r["key"] for r in got["rows"]] == ["2025-03-26", "2025-03-28", "2025-03-30"]
    assert_totals(
        got["totals"], ledger_sums(history, f"started_at >= {ms(2025, 3, 26)} AND started_at < {ms(2025, 3, 31)}")
    )
    # branch (from requests) covers the same window as day (from the rollup)
    branch = report_json("--by", "branch", "--since", "2025-03-26", "--until", "2025-03-31")
    assert_totals(branch["totals"], got["totals"])


# --- calendar boundaries --------------------------------------------------------------------------------


def test_week_and_month_boundaries_in_the_configured_zone(history):
    weeks = {r["key"]: r for r in report_json("--by", "week", *WHOLE)["rows"]}
    assert list(weeks) == ["2025-W13", "2025-W14"]
    assert weeks["2025-W13"]["start"] == "2025-03-24" and weeks["2025-W13"]["end"] == "2025-03-31"
    # Sunday 23:00 belongs to W13, Monday 00:30 to W14
    assert weeks["2025-W13"]["requests"] == 6 and weeks["2025-W14"]["requests"] == 6
    months = {r["key"]: r for r in report_json("--by", "month", *WHOLE)["rows"]}
    assert months["2025-03"]["start"] == "2025-03-01" and months["2025-03"]["end"] == "2025-04-01"
    assert months["2025-03"]["requests"] == 8  # 31 March 23:30 New York is still March
    assert months["2025-04"]["requests"] == 4
    explicit = report_json("--by", "month", "--tz", "America/New_York", *WHOLE)
    assert explicit["source"] == "rollup" and explicit["rows"] == list(months.values())


def test_another_zone_regroups_from_requests(history):
    months = {r["key"]: r for r in report_json("--by", "month", "--tz", "UTC", *WHOLE)["rows"]}
    assert months["2025-03"]["requests"] == 7 and months["2025-04"]["requests"] == 5
    weeks = report_json("--by", "week", "--tz", "UTC", *WHOLE)
    assert weeks["source"] == "requests" and weeks["timezone"] == "UTC"
    # Sunday 23:00 New York is Monday 03:00 UTC: week 14 there
    assert {r["key"]: r["requests"] for r in weeks["rows"]} == {"2025-W13": 5, "2025-W14": 7}
    assert_totals(weeks["totals"], ledger_sums(history))


def test_fast_path_takes_option_equals_value_and_imports_nothing_heavy(history):
    spaced = report_json("--by", "day", "--since", "2025-03-26", "--until", "2025-03-31")
    assert report_json("--by=day", "--since=2025-03-26", "--until=2025-03-31") == spaced
    code = (
        "import sys, io, contextlib\nfrom agentmeter.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['report', '--format', 'json'])\n"
        "print(sorted(m for m in ('typer', 'click', 'rich', 'aiohttp', 'genai_prices', 'sqlite_utils', 'argparse', "
        "'logging', 'agentmeter.core.models', 'agentmeter.ledger.writer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_bad_window_and_zone_are_usage_errors(history):
    for args in (
        ["--since", "yesterday-ish"],
        ["--tz", "Mars/Olympus"],
        ["--since", "2025-04-02", "--until", "2025-04-01"],
    ):
        got = run_cli("report", *args)
        assert got.returncode == 2, (args, got.stderr)
        assert got.stderr.startswith("agentmeter: ") and "hint:" in got.stderr and "Traceback" not in got.stderr


# --- formats --------------------------------------------------------------------------------------------


def test_report_json_schema(history):
    got = report_json("--by", "week", *WHOLE)
    assert set(got) == {"schema", "by", "since", "until", "timezone", "source", "rows", "totals", "plan", "plan_daily"}
    assert got["schema"] == "agentmeter.report/1"
    assert (got["by"], got["since"], got["until"], got["timezone"]) == (
        "week",
        "2025-03-01",
        "2025-05-01",
        "America/New_York",
    )
    sums = {
        "requests",
        *BUCKETS,
        "cache_write_5m_tokens",
        "cache_write_1h_tokens",
        "web_search_requests",
        "cost_usd",
        "billed_cost_usd",
        "subscription_cost_usd",
        "unpriced_requests",
        "cache_hit_rate",
    }
    assert set(got["totals"]) == sums
    assert all(set(r) == {"key", "start", "end", *sums} for r in got["rows"])
    day_row = report_json("--by", "day", *WHOLE)["rows"][0]
    assert set(day_row) == {"key", *sums}
    session_row = report_json("--by", "session", *WHOLE)["rows"][0]
    assert set(session_row) == {"key", "agent", "repo", "branch", "first_at", "last_at", *sums}


def test_report_csv_round_trip(history):
    got = run_cli("report", "--by", "model", "--format", "csv", *WHOLE)
    assert got.returncode == 0, got.stderr
    rows = list(csv.DictReader(io.StringIO(got.stdout)))
    assert tuple(rows[0]) == reports.REPORT_COLUMNS and len(rows) == 4
    want = ledger_sums(history)
    assert math.isclose(sum(float(r["cost_usd"]) for r in rows), want["cost_usd"], abs_tol=1e-9)
    assert sum(int(r["cache_read_tokens"]) for r in rows) == want["cache_read_tokens"]


def test_export_csv_round_trip(history, tmp_path):
    out = tmp_path / "requests.csv"
    got = run_cli("export", "--format", "csv", "--output", str(out))
    assert got.returncode == 0 and got.stdout == ""
    assert re.fullmatch(r"agentmeter: 13 requests to .*requests\.csv: \$\S+\n", got.stderr)
    rows = list(csv.DictReader(out.open(newline="")))
    assert tuple(rows[0]) == exports.EXPORT_COLUMNS and len(rows) == len(HISTORY)
    want = ledger_sums(history)
    assert math.isclose(sum(float(r["cost_usd"] or 0) for r in rows), want["cost_usd"], abs_tol=1e-9)
    for b in BUCKETS:
        assert sum(int(r[b]) for r in rows) == want[b]
    assert rows[0]["started_at"] == "2025-03-24T14:00:00.000Z" and rows[0]["developer"] == "dev@example.com"
    refused = next(r for r in rows if r["status"] == "refused")
    assert refused["cost_usd"] == "" and refused["decision"] == "refuse"


def test_export_jsonl_round_trip_to_stdout(history):
    got = run_cli("export", "--format", "jsonl", "--since", "2025-04-01", "--until", "2025-04-03")
    assert got.returncode == 0, got.stderr
    rows = [json.loads(line) for line in got.stdout.splitlines()]
    assert len(rows) == 3 and all(tuple(r) == exports.EXPORT_COLUMNS for r in rows)
    want = ledger_sums(history, f"started_at >= {ms(2025, 4, 1)} AND started_at < {ms(2025, 4, 3)}")
    assert math.isclose(sum(r["cost_usd"] or 0 for r in rows), want["cost_usd"], abs_tol=1e-9)
    assert sum(r["web_search_requests"] for r in rows) == 3 and rows[0]["unpriced"] is True
    assert "3 requests to stdout" in got.stderr


def test_json_export_streams_the_same_document_json_dumps_would_write():
    """`export --format json` and `collector export --json` write one row at a time: the text is exactly what
    json.dumps(envelope, indent=2) gave when the whole list was built first, and the rows are consumed lazily
    (a million-row export never holds them all)."""
    from datetime import date

    from agentmeter.render import envelope
    from agentmeter.render.report import write_json_rows

    samples = [
        [],
        [{}],
        [{"a": 1}],
        [
            {"cost_usd": 0.1 + 0.2, "when": date(2026, 12, 4), "text": 'line\nbreak "q" é ☃', "none": None},
            {"nested": {"tags": {"team": "payments"}, "list": [1, [2, {"x": []}], {}]}, "flag": True},
            {"empty_list": [], "empty_dict": {}, "big": 2**63, "neg": -1.5e-12},
        ],
    ]
    for rows in samples:
        out = io.StringIO()
        assert write_json_rows("export", iter(rows), out) == len(rows)
        want = json.dumps(envelope("export", {"rows": rows}), indent=2, default=str) + "\n"
        assert out.getvalue() == want

    pulled = []

    def rows():
        for i in range(1000):
            pulled.append(i)
            yield {"i": i}

    class Sink(io.StringIO):
        def write(self, text):
            # every row has been written by the time the next is pulled
            assert text.count('"i"') <= 1 and len(pulled) <= 1 + self.getvalue().count('"i"')
            return super().write(text)

    sink = Sink()
    assert write_json_rows("export", rows(), sink) == 1000
    assert [r["i"] for r in json.loads(sink.getvalue())["rows"]] == list(range(1000))


# --- FOCUS ----------------------------------------------------------------------------------------------

MANDATORY = (
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "BillingCurrency",
    "BillingAccountId",
    "BillingAccountName",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "InvoiceIssuerName",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "PricingQuantity",
    "PricingUnit",
)


def focus_export(tmp_path, *args: str) -> list[dict]:
    out = tmp_path / "focus.csv"
    got = run_cli("export", "--format", "focus", "--output", str(out), *args)
    assert got.returncode == 0, got.stderr
    assert "FOCUS rows" in got.stderr and got.stdout == ""
    return list(csv.DictReader(out.open(newline="")))


def test_focus_round_trip(history, tmp_path):
    rows = focus_export(tmp_path)
    assert set(MANDATORY) <= set(rows[0])
    for r in rows:
        assert all(r[c] != "" for c in MANDATORY if c != "ChargeClass") and r["ChargeClass"] == ""
        assert (
            r["BillingCurrency"],
            r["ChargeCategory"],
            r["ServiceCategory"],
            r["ServiceSubcategory"],
            r["PricingCategory"],
        ) == ("USD", "Usage", "AI and Machine Learning", "Generative AI", "Standard")
        assert r["BillingAccountName"] == "payments" and r["SubAccountId"] == "dev@example.com"
        assert json.loads(r["Tags"])["agentmeter/team"] == "payments"  # FOCUS 1.2: provider tags prefixed
    billed = sum(float(r["BilledCost"]) for r in rows)
    sub_list = sum(float(r["ListCost"]) for r in rows if r["x_Subscription"] == "true")
    assert math.isclose(billed + sub_list, ledger_sums(history)["cost_usd"], abs_tol=1e-9)
    for r in rows:
        if r["x_Subscription"] == "true":
            assert float(r["BilledCost"]) == float(r["EffectiveCost"]) == 0 and float(r["ListCost"]) > 0
            assert r["ServiceName"] == "Claude subscription" and "not billed" in r["ChargeDescription"]
        else:
            assert r["BilledCost"] == r["EffectiveCost"] == r["ListCost"] == r["ContractedCost"]
    # one row per day × model × token type (agent, repo and subscription keep their own rows)
    keys = [
        (r["ChargePeriodStart"], r["SkuId"], r["x_TokenType"], r["x_Agent"], r["x_Repo"], r["x_Subscription"])
        for r in rows
    ]
    assert len(keys) == len(set(keys))
    day_model_types = {(r["ChargePeriodStart"], r["SkuId"], r["x_TokenType"]) for r in rows}
    assert ("2025-03-24T04:00:00Z", "claude-sonnet-4-5", "cache_read") in day_model_types
    assert ("2025-04-03T04:00:00Z", "claude-sonnet-4-5", "cache_write_1h") in day_model_types
    assert ("2025-04-02T04:00:00Z", "gpt-5.1", "web_search") in day_model_types
    assert not any(r["x_TokenType"] == "reasoning" for r in rows)  # billed inside output


def test_focus_periods_and_per_bucket_costs(history, tmp_path):
    rows = focus_export(tmp_path, "--since", "2025-03-31", "--until", "2025-04-01")
    # 31 March is EDT (UTC-4); its billing month began in EST (UTC-5)
    assert {
        (r["ChargePeriodStart"], r["ChargePeriodEnd"], r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in rows
    } == {("2025-03-31T04:00:00Z", "2025-04-01T04:00:00Z", "2025-03-01T05:00:00Z", "2025-04-01T04:00:00Z")}
    sonnet = {r["x_TokenType"]: r for r in rows if r["SkuId"] == "claude-sonnet-4-5"}
    assert set(sonnet) == {"input", "cache_read", "output"}
    assert sonnet["cache_read"]["ConsumedQuantity"] == "21000" and sonnet["cache_read"]["ConsumedUnit"] == "Tokens"
    assert sonnet["cache_read"]["PricingUnit"] == "1000000 Tokens"
    for r in sonnet.values():  # a plain genai-prices row: each bucket is its tokens at its list rate
        assert math.isclose(float(r["ListCost"]), float(r["ListUnitPrice"]) * float(r["PricingQuantity"]), rel_tol=1e-6)
        assert float(r["PricingQuantity"]) == int(r["ConsumedQuantity"]) / 1e6


def test_allocate_sums_exactly():
    parts = focus.allocate(0.1 + 0.2, {"input": 3.0, "cache_read": 0.0, "output": 7.0, "web_search": 0.0})
    assert parts["cache_read"] == parts["web_search"] == 0.0
    assert sum(parts.values()) == 0.1 + 0.2 and math.isclose(parts["input"], 0.09)
    assert focus.allocate(1.0, {"input": 0.0}) == {"input": 0.0}


# --- the real proxy -------------------------------------------------------------------------------------


def _post(url: str, body: dict, usage: dict, headers: dict) -> None:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-fake-usage": json.dumps(usage), **headers},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def test_through_the_real_stack(home, tmp_path):
    home.mkdir(parents=True, exist_ok=True)
    stack, close = make_stack(home)  # its ledger is the one the CLI reads: $AGENTMETER_HOME/ledger.db
    try:
        for agent, repo, branch, turns in (
            ("claude", "acme/api", "main", 3),
            ("codex", "acme/web", "feat", 2),
            ("cursor", "acme/api", "fix", 1),
        ):
            s = stack.open_session(agent=agent, repo=repo, branch=branch)
            for i in range(turns):
                usage = {
                    "input_tokens": 100 * (i + 1),
                    "cache_read_tokens": 5000 * i,
                    "cache_write_tokens": 700,
                    "output_tokens": 40 + i,
                    "reasoning_tokens": 10 if agent == "codex" else 0,
                }
                if agent == "codex":
                    _post(
                        s["openai"] + "/responses",
                        {"model": "gpt-5.1", "stream": True, "input": "x"},
                        usage,
                        {"Authorization": "Bearer sk-test"},
                    )
                else:
                    model = "claude-haiku-4-5" if agent == "cursor" else "claude-sonnet-4-5"
                    # claude logs in with a subscription (OAuth): passthrough, API-equivalent cost
                    auth = {"Authorization": "Bearer sk-ant-oat-x"} if agent == "claude" else {"x-api-key": "sk-a"}
                    _post(
                        s["anthropic"] + "/v1/messages",
                        {
                            "model": model,
                            "max_tokens": 10,
                            "stream": True,
                            "messages": [{"role": "user", "content": "x"}],
                        },
                        usage,
                        {"anthropic-version": "2023-06-01", **auth},
                    )
    finally:
        close()
    want = ledger_sums(home / "ledger.db")
    assert want["requests"] == 6 and want["subscription_cost_usd"] > 0 and want["reasoning_tokens"] == 20
    for by in reports.GROUPINGS:
        got = report_json("--by", by)
        assert_totals(got["totals"], want)
    assert {r["key"] for r in report_json("--by", "agent")["rows"]} == {"claude", "codex", "cursor"}
    assert {(r["repo"], r["key"]) for r in report_json("--by", "branch")["rows"]} == {
        ("acme/api", "main"),
        ("acme/web", "feat"),
        ("acme/api", "fix"),
    }
    rows = focus_export(tmp_path)
    billed = sum(float(r["BilledCost"]) for r in rows)
    sub_list = sum(float(r["ListCost"]) for r in rows if r["x_Subscription"] == "true")
    assert math.isclose(billed + sub_list, want["cost_usd"], abs_tol=1e-9)
    assert math.isclose(sub_list, want["subscription_cost_usd"], abs_tol=1e-9)


# --- chart, HTML ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [80, 120])
def test_chart_fits_the_terminal(history, columns):
    got = run_cli("report", "--chart", "--since", "2025-03-24", "--until", "2025-04-04", env={"COLUMNS": str(columns)})
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), [line for line in lines if len(line) > columns]
    assert lines[0].startswith("daily spend, last 11 days") and f"daily cap ${CAP:.4f}" in lines[0]
    bars = lines[1:12]
    days = reports.Window(NY, datetime(2025, 3, 24).date(), datetime(2025, 4, 4).date()).days()
    assert [b[:5] for b in bars] == [d.isoformat()[5:] for d in days]
    assert all("┃" in b for b in bars) and len({len(b) for b in bars}) == 1  # aligned, the cap in every row
    assert "█" not in bars[1]  # 25 March: no spend
    assert any(line.lstrip().startswith("2025-03-24") for line in lines[12:])  # the table follows


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict] = []
        self.bars = 0
        self.svg = False
        self.cap = False
        self.table_rows: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and a.get("id") == "spend-chart":
            self.svg = True
        if tag == "rect" and "bar" in (a.get("class") or "").split() and self.svg:
            self.bars += 1
        if tag == "line" and a.get("id") == "cap-line":
            self.cap = True
        if tag == "table" and "report" in (a.get("class") or "").split():
            self.stack.append({"id": a.get("id"), "body": False})
        if tag == "tbody" and self.stack:
            self.stack[-1]["body"] = True
        if tag == "tr" and self.stack and self.stack[-1]["body"]:
            self.table_rows[self.stack[-1]["id"]] = self.table_rows.get(self.stack[-1]["id"], 0) + 1

    def handle_endtag(self, tag):
        if tag == "tbody" and self.stack:
            self.stack[-1]["body"] = False
        if tag == "table" and self.stack:
            self.stack.pop()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_report_in_headless_chromium(history, tmp_path):
    page = tmp_path / "report.html"
    got = run_cli("report", "--html", str(page), "--since", "2025-03-24", "--until", "2025-04-04")
    assert got.returncode == 0, got.stderr
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    assert "<script" not in text
    browser = chromium()
    if browser is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    parsed = _Dom()
    parsed.feed(dom)
    assert parsed.svg and parsed.bars == 11 and parsed.cap
    days_with_spend = {when[:3] for when, *_ in HISTORY if (2025, 3, 24) <= when[:3] < (2025, 4, 4)}
    assert parsed.table_rows == {"by-day": len(days_with_spend), "by-agent": 4, "by-model": 4, "by-repo": 3}
    assert 'data-day="2025-03-24"' in dom and "claude-sonnet-4-5" in dom


def test_html_forecast_band_for_today(home, tmp_path):
    write_config(home)
    lg = open_ledger(get_paths().ledger, tz=NY)
    now_ms = SystemClock().now_ms()
    for i in range(21):  # one request a day for three weeks, the last a minute ago
        lg.insert_request(
            RequestRecord(
                request_id=f"f{i}",
                session_id=None,
                started_at_ms=now_ms - 60_000 - i * 86_400_000,
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/messages",
                model_requested="m",
                model_used="m",
                stream=False,
                status="ok",
                http_status=200,
                usage=Usage(input_tokens=10),
                cost_usd=0.2 + 0.01 * (i % 5),
                agent="claude",
            )
        )
    lg.close()
    page = tmp_path / "today.html"
    got = run_cli("report", "--html", str(page))
    assert got.returncode == 0, got.stderr
    band = re.search(
        r"<rect id='forecast-band' class='band' data-day='([\d-]+)' data-p10='([\d.]+)' "
        r"data-p50='([\d.]+)' data-p90='([\d.]+)'",
        page.read_text(),
    )
    assert band, "no forecast band"
    today = SystemClock().now().astimezone(NY).date().isoformat()
    p10, p50, p90 = map(float, band.groups()[1:])
    assert band.group(1) == today and 0 < p10 <= p50 <= p90 < 1.0
    assert "cap-line" in page.read_text()
    # a window that ends before today has nothing to project
    assert run_cli("report", "--html", str(page), "--until", "1d").returncode == 0
    assert "forecast-band" not in page.read_text()


# --- scale: answered from the rollup, whatever the size of `requests` ----------------------------------
# (Speed itself is measured in benchmarks/status_scale.py, not asserted here.)


def test_a_month_by_day_reads_only_the_rollup(tmp_path):
    path = tmp_path / "big.db"
    lg = open_ledger(path, tz=NY)
    n, start = 20_000, ms(2025, 6, 1)
    agents, models, repos = ("claude", "codex", "cursor"), ("claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5.1"), 20
    lg.conn.execute("BEGIN")
    lg.conn.execute(
        f"""WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n - 1})
            INSERT INTO requests (request_id, session_id, started_at, day, provider, api, method, path, model_used,
                                  status, input_tokens, output_tokens, cost_usd, agent, repo)
            SELECT 'r' || i, 's' || (i / 50), {start} + i * 130000, date(({start} + i * 130000) / 1000, 'unixepoch'),
                   'anthropic', 'messages', 'POST', '/v1/messages',
                   CASE i % 3 WHEN 0 THEN '{models[0]}' WHEN 1 THEN '{models[1]}' ELSE '{models[2]}' END,
                   'ok', 100 + i % 1000, 50, 0.001, CASE i % 7 WHEN 0 THEN '{agents[1]}' WHEN 1 THEN '{agents[2]}'
                   ELSE '{agents[0]}' END, 'repo' || (i % {repos}) FROM seq"""
    )
    lg.conn.execute(
        "INSERT INTO usage_daily (day, agent, provider, model, repo, subscription, requests, input_tokens, "
        "output_tokens, cost_usd) SELECT day, agent, provider, model_used, repo, 0, COUNT(*), SUM(input_tokens), "
        "SUM(output_tokens), SUM(cost_usd) FROM requests GROUP BY day, agent, provider, model_used, repo"
    )
    # If the report scanned requests it would now find nothing.
    lg.conn.execute("DELETE FROM requests")
    lg.conn.execute("COMMIT")
    window = reports.report_window("2025-06-01", "2025-07-01", NY, datetime(2025, 12, 1, tzinfo=NY))
    got = reports.build_report(lg, "day", window, NY)
    assert len(got["rows"]) == 30 and got["source"] == "rollup"
    assert got["totals"]["requests"] > 19_000
    lg.close()
