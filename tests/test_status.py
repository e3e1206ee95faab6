"""`agentmeter status`: the contract JSON, the one-screen text, and the fast path's imports."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

from agentmeter.commands.status import build_status
from agentmeter.core.clock import FixedClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.home.config import Budget, Caps, Config
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from conftest import run_cli

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def seed(rows):
    ledger = open_ledger(get_paths().ensure().ledger)
    ledger.create_session(
        {"id": "s1", "token_hash": "h1", "agent": "claude", "repo": "github.com/acme/w", "started_at": rows[0][0]}
    )
    for i, (ms, usd, agent, model, unpriced, sub) in enumerate(rows):
        ledger.insert_request(
            RequestRecord(
                request_id=f"r{i}",
                session_id="s1",
                started_at_ms=ms,
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/messages",
                model_requested=model,
                model_used=model,
                stream=True,
                status="ok",
                http_status=200,
                usage=Usage(input_tokens=100, cache_read_tokens=10, output_tokens=50),
                cost_usd=usd,
                price_source="fallback" if unpriced else "genai-prices",
                unpriced=unpriced,
                agent=agent,
                subscription=sub,
            )
        )
    ledger.close()


def ms(dt):
    return int(dt.timestamp() * 1000)


def test_status_json_contract(home):
    seed(
        [
            (ms(NOW.replace(hour=9)), 5.0, "claude", "claude-sonnet-4-5", False, False),
            (ms(NOW.replace(day=20)), 3.0, "codex", "gpt-7-nova", True, False),
            (ms(NOW.replace(day=2)), 2.0, "claude", "claude-sonnet-4-5", False, True),
        ]
    )
    cfg = Config(budget=Budget(timezone="UTC", caps=Caps(daily_usd=6.0, monthly_usd=100.0)))
    st = build_status(cfg, FixedClock(NOW))
    day, week, month = st["windows"]
    assert [w["name"] for w in st["windows"]] == ["day", "week", "month"]
    for w in st["windows"]:
        assert {
            "name",
            "start",
            "end",
            "spent_usd",
            "cap_usd",
            "spent_tokens",
            "cap_tokens",
            "used_pct",
            "stage",
            "forecast_usd",
        } <= set(w)
    assert day["spent_usd"] == 5.0 and day["used_pct"] == 83.3 and day["stage"] == "alert"
    assert week["spent_usd"] == 5.0 and week["cap_usd"] is None and week["stage"] == "ok"  # Fri 20 was last week
    assert week["start"].startswith("2026-11-23") and month["spent_usd"] == 10.0
    assert day["forecast_usd"]["p10"] <= day["forecast_usd"]["p50"] <= day["forecast_usd"]["p90"]
    assert day["forecast_usd"]["p10"] >= 5.0  # never below what is already spent
    assert st["today"]["spent_usd"] == 5.0 and st["today"]["sessions"][0]["id"] == "s1"
    assert {a["agent"] for a in st["by_agent"]} == {"claude", "codex"}
    assert st["unpriced_models"][0]["model"] == "gpt-7-nova"
    assert st["subscription"] == {"api_equivalent_usd": 2.0, "billed_usd": 8.0}
    assert {"sync", "today", "by_agent", "unpriced_models"} <= set(st)


def test_status_on_an_empty_home(home):
    r = run_cli("status", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == "agentmeter.status/1" and data["windows"][0]["spent_usd"] == 0


def test_fast_path_imports_nothing_heavy(home):
    seed([(ms(NOW), 1.0, "claude", "claude-sonnet-4-5", False, False)])
    code = (
        "import sys, io, contextlib\nfrom agentmeter.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['status', '--json'])\n"
        "print(sorted(m for m in ('typer', 'click', 'rich', 'aiohttp', 'genai_prices', 'sqlite_utils', "
        "'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_screen_fits_80_and_120_columns(home):
    seed([(ms(NOW), 1.0, "claude", "claude-sonnet-4-5", False, False)])
    (home / "config.toml").write_text("[budget]\ndaily_usd = 2.0\n")
    for cols in (80, 120):
        r = run_cli("status", env={"COLUMNS": str(cols)})
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].startswith("agentmeter status")
        assert any(line.startswith("day ") and "$2.00" in line for line in lines)
        assert max(len(line) for line in lines) <= cols, [line for line in lines if len(line) > cols]
        assert "\x1b[" not in r.stdout  # no colour codes when piped
