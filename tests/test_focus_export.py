"""Both FOCUS exports — the local `agentmeter export --format focus` and the collector's `collector export` /
`GET /v1/export/focus` — come from one mapping (pricing/focus.py): the same columns, the same values for the
same usage, and both pass the FinOps Foundation's validator (`focus-validator` on PyPI) for FOCUS 1.2, the
version they declare, recommended columns included.

The validator needs Python >= 3.12 and pins numpy < 2 and pytz < 2026, so it lives in a virtualenv of its own
(.ci/run builds `.venv-focus` and sets AGENTMETER_FOCUS_VALIDATOR); without it those tests skip, naming it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

from agentmeter.pricing import focus
from conftest import run_cli
from sync.helpers import Client, Collector, request
from test_reports import HISTORY, WHOLE, history, ledger_sums  # noqa: F401 (history is a fixture)

SUMMARY = re.compile(r"Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)")


def validator() -> Path | None:
    exe = os.environ.get("AGENTMETER_FOCUS_VALIDATOR") or shutil.which("focus-validator")
    return Path(exe) if exe and Path(exe).exists() else None


needs_validator = pytest.mark.skipif(
    validator() is None,
    reason="focus-validator (the FinOps Foundation's FOCUS validator, PyPI, Python >= 3.12) not installed: "
    ".ci/run installs it into .venv-focus; or set AGENTMETER_FOCUS_VALIDATOR",
)


def validate(csv_path: Path, *extra: str) -> tuple[dict[str, int], str]:
    """Run the real validator on a CSV file: its counts (total, pass, fail, skipped, and `real` failures) and
    the report of the real ones.

    focus-validator 2.2.1 also lists as failed the branch not taken of an OR rule that passed: InvoiceId-C-003-C
    is "null (no invoice, C-004) OR not null (an invoice, C-005)", and whichever the data satisfies, the other
    leaf is reported. A failure is real unless an OR rule that passed names it."""
    exe = validator()
    assert exe is not None
    # focus-validator 2.2.1 opens its currency list by a path relative to its own site-packages directory.
    where = subprocess.run(
        [
            str(exe.parent / "python"),
            "-c",
            "import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    got = subprocess.run(
        [
            str(exe),
            "--data-file",
            str(csv_path),
            "--validate-version",
            focus.FOCUS_VERSION,
            "--block-download",
            "--show-violations",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=where,
        timeout=300,
    )
    report = got.stdout + got.stderr
    m = SUMMARY.search(report)
    assert m, report[-3000:]
    counts = dict(zip(("total", "pass", "fail", "skipped"), map(int, m.groups()), strict=True))
    failed = set(re.findall(r"❌ (\S+): FAIL", report))
    passed = set(re.findall(r"✅ (\S+): PASS", report))
    alternatives = set()
    for model in Path(where, "focus_validator", "rules").glob("model-*.json"):
        for rule_id, rule in _rules(json.loads(model.read_text())):
            req = (rule.get("ValidationCriteria") or {}).get("Requirement") or {}
            if rule_id in passed and req.get("CheckFunction") == "OR":
                alternatives |= {i.get("ModelRuleId") for i in req.get("Items", []) if isinstance(i, dict)}
    real = sorted(failed - alternatives)
    counts["real_fail"] = len(real)
    return counts, "\n".join(line for line in report.splitlines() if any(f in line for f in real))


def _rules(obj):
    """(rule id, rule) for every rule object in the validator's model file."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and "ValidationCriteria" in v:
                yield k, v
            else:
                yield from _rules(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _rules(v)


@pytest.fixture
def collector(collector_db):
    c = Collector(collector_db).start()
    yield c
    c.close()


# Chargeback tags (`run --tag K=V`) of two of the history's sessions: s1 shares its rollup rows with untagged
# s3 (both claude), so those rows split into a tagged part and the rest.
SESSION_TAGS = {"s1": {"ticket": "ABC-1"}, "s2": {"ticket": "ABC-2", "feature": "search"}}


def tag_sessions(ledger: Path) -> None:
    from agentmeter.ledger import open_ledger

    lg = open_ledger(ledger)
    try:
        for sid, tags in SESSION_TAGS.items():
            lg.conn.execute("UPDATE sessions SET tags = ? WHERE id = ?", (json.dumps(tags, sort_keys=True), sid))
        lg.conn.commit()
    finally:
        lg.close()


def exports(history, tmp_path, collector) -> tuple[Path, Path, str]:  # noqa: F811
    """The local export of the history ledger (two sessions tagged), and the collector's after the same ledger
    was synced to it."""
    tag_sessions(history)
    local = tmp_path / "local.csv"
    got = run_cli("export", "--format", "focus", "--output", str(local), *WHOLE)
    assert got.returncode == 0, got.stderr
    dev = Client(
        history.parent,
        "dev@example.com",
        "payments",
        collector.token("dev@example.com", team="payments", cost_center="CC-1"),
    )
    assert dev.sync(collector.url)["ok"]
    team = tmp_path / "team.csv"
    got = run_cli("collector", "export", "--db", str(collector.db), "--format", "focus", "--output", str(team))
    assert got.returncode == 0, got.stderr
    admin = collector.token("finance@example.com", admin=True)
    status, over_http, _ = request(f"{collector.url}/v1/export/focus?format=csv", token=admin)
    assert status == 200
    return local, team, over_http


def read(path: Path | str) -> list[dict[str, str]]:
    text = path.read_text() if isinstance(path, Path) else path
    return list(csv.DictReader(io.StringIO(text)))


def test_local_and_collector_exports_are_one_mapping(history, tmp_path, collector):  # noqa: F811
    local, team, over_http = exports(history, tmp_path, collector)
    local_rows, team_rows = read(local), read(team)
    assert tuple(local.read_text().splitlines()[0].split(",")) == focus.COLUMNS
    assert tuple(team.read_text().splitlines()[0].split(",")) == focus.COLUMNS
    assert read(over_http) == team_rows
    assert {"ChargeFrequency", "InvoiceId", "ServiceSubcategory"} <= set(focus.COLUMNS)
    assert all(c.startswith("x_") for c in focus.COLUMNS[len(focus.FOCUS_COLUMNS) :])

    def by_sku(rows):
        out = defaultdict(lambda: [0.0, 0.0, 0])
        for r in rows:
            k = (r["SkuId"], r["x_TokenType"], r["x_Agent"], r["x_Repo"], r["x_Subscription"])
            out[k][0] += float(r["BilledCost"])
            out[k][1] += float(r["ListCost"])
            out[k][2] += int(r["ConsumedQuantity"])
        return out

    mine, theirs = by_sku(local_rows), by_sku(team_rows)
    assert mine.keys() == theirs.keys()
    for k in mine:  # the same money and tokens per SKU and token type (pushed costs are rounded to 9 places)
        assert all(math.isclose(a, b, abs_tol=1e-8) for a, b in zip(mine[k], theirs[k], strict=True)), k
    assert any(k[1] == "cache_write_1h" for k in mine) and any(k[1] == "web_search" for k in mine)
    want = ledger_sums(history)
    assert math.isclose(sum(float(r["ListCost"]) for r in team_rows), want["cost_usd"], abs_tol=1e-7)
    for r in team_rows:
        assert r["ChargeFrequency"] == "Usage-Based" and r["InvoiceId"] == ""
        assert (r["x_Developer"], r["x_Team"], r["x_CostCenter"]) == ("dev@example.com", "payments", "CC-1")
        assert math.isclose(
            float(r["ListCost"]),
            float(r["ListUnitPrice"] or 0) * float(r["PricingQuantity"]),
            rel_tol=1e-6,
            abs_tol=1e-12,
        )


def test_chargeback_tags_reach_focus_tags_and_x_columns_in_both_exports(history, tmp_path, collector):  # noqa: F811
    """`run --tag K=V` reaches both FOCUS exports: each rollup row is split into its share per tag set and the
    rest, the user's tags are in FOCUS `Tags` (unprefixed: one user-defined scheme) beside agentmeter's own
    (prefixed `agentmeter/`, FOCUS 1.2 Tags-C-012-M) and alone in `x_ChargebackTags`; the money per tag set is
    what the tagged sessions' requests cost, the same locally, through `collector export` and over HTTP, and
    the totals do not move."""
    from agentmeter.core.models import RequestRecord, Usage
    from agentmeter.ledger import open_ledger as open_
    from test_reports import NY, ms

    # an untagged session's request in the same rollup row as tagged s1's first one (day, model, agent, repo)
    lg = open_(history, tz=NY)
    try:
        lg.create_session({"id": "s9", "token_hash": "hs9", "agent": "claude", "started_at": ms(2025, 3, 24, 0)})
        lg.insert_request(
            RequestRecord(
                request_id="r-untagged",
                session_id="s9",
                started_at_ms=ms(2025, 3, 24, 16),
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/x",
                model_requested="claude-sonnet-4-5",
                model_used="claude-sonnet-4-5",
                stream=True,
                status="ok",
                http_status=200,
                usage=Usage(input_tokens=5000, output_tokens=700),
                cost_usd=0.0255,
                price_source="test",
                agent="claude",
                repo="acme/api",
                decision="allow",
            )
        )
    finally:
        lg.close()
    local, team, over_http = exports(history, tmp_path, collector)
    from agentmeter.ledger import open_ledger
    from test_reports import BILLABLE

    lg = open_ledger(history, readonly=True)
    try:
        want = {}
        for sid, tags in SESSION_TAGS.items():
            row = lg.conn.execute(
                f"SELECT COALESCE(SUM(cost_usd), 0), COUNT(*) FROM requests WHERE session_id = ? AND {BILLABLE}",
                (sid,),
            ).fetchone()
            want[json.dumps(tags, sort_keys=True)] = (row[0], row[1])
        total = lg.conn.execute(f"SELECT COALESCE(SUM(cost_usd), 0) FROM requests WHERE {BILLABLE}").fetchone()[0]
    finally:
        lg.close()
    assert all(n > 0 for _c, n in want.values())

    for name, rows in (("local", read(local)), ("collector", read(team)), ("http", read(over_http))):
        got: dict[str, list] = defaultdict(lambda: [0.0, 0])
        for r in rows:
            tags = json.loads(r["Tags"])
            mine = {k: v for k, v in tags.items() if not k.startswith("agentmeter/")}
            assert r["x_ChargebackTags"] == (json.dumps(mine, sort_keys=True) if mine else ""), (name, r)
            assert tags["agentmeter/developer"] == "dev@example.com" and "team" not in tags, (name, tags)
            got[r["x_ChargebackTags"]][0] += float(r["ListCost"])
            got[r["x_ChargebackTags"]][1] += int(r["x_Requests"]) if r["x_TokenType"] == "input" else 0
        assert set(got) == {"", *want}, (name, got.keys())
        for key, (cost, _n) in want.items():
            assert math.isclose(got[key][0], cost, abs_tol=1e-7), (name, key, got[key], cost)
        assert math.isclose(sum(v[0] for v in got.values()), total, abs_tol=1e-7), name
        # a rollup row shared by a tagged and an untagged session became two rows for the same SKU and day
        split = defaultdict(set)
        for r in rows:
            split[(r["ChargePeriodStart"], r["SkuPriceId"], r["x_Agent"], r["x_Repo"])].add(r["x_ChargebackTags"])
        assert any(len(v) > 1 and "" in v for v in split.values()), name


def test_tag_keys_in_the_reserved_prefix_are_refused_by_run(home):
    got = run_cli("run", "--tag", "agentmeter/team=x", "--", "true")
    assert got.returncode != 0 and "agentmeter/" in got.stderr and "Traceback" not in got.stderr, got.stderr


@needs_validator
def test_both_exports_pass_the_focus_validator(history, tmp_path, collector):  # noqa: F811
    local, team, _ = exports(history, tmp_path, collector)
    for path in (local, team):
        counts, failures = validate(path)
        assert counts["real_fail"] == 0, f"{path.name}: {counts}\n{failures}"
        assert counts["pass"] >= 100, counts  # it did check the columns, not skip them all


@needs_validator
def test_the_validator_catches_a_missing_recommended_column(tmp_path):
    """The check above can fail: the export as it was before (no ChargeFrequency, no InvoiceId) does."""
    row = {"input_tokens": 1000, "output_tokens": 10, "cost_usd": 0.0031}
    charge = focus.Charge(
        day=date(2025, 4, 1),
        provider="anthropic",
        model="claude-sonnet-4-5",
        agent="claude",
        repo="acme/api",
        subscription=False,
        developer="dev@example.com",
        team="payments",
        cost_center=None,
        requests=1,
        unpriced_requests=0,
        quantities=focus.quantities(row),
        costs=focus.split_cost(row, None),
    )
    rows = list(focus.focus_rows(charge))
    old = [c for c in focus.COLUMNS if c not in ("ChargeFrequency", "InvoiceId")]
    path = tmp_path / "old.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=old, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: focus.csv_cell(v) for k, v in r.items()})
    counts, failures = validate(path)
    assert counts["real_fail"] > 0 and "ChargeFrequency" in failures and "InvoiceId" in failures


def test_a_push_from_an_older_client_keeps_its_four_type_split(collector):
    """Clients before issue 20 split the cost over four types (1-hour writes inside cache_write, web searches
    spread over the tokens): the collector's rows keep that shape and still add up to the pushed cost."""
    token = collector.token("old@example.com", team="web")
    item = {
        "key": "c" * 64,
        "day": "2026-11-18",
        "agent": "claude",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "repo": "acme/web",
        "subscription": False,
        "requests": 2,
        "input_tokens": 100,
        "cache_write_tokens": 3000,
        "cache_write_1h_tokens": 1000,
        "output_tokens": 50,
        "web_search_requests": 2,
        "cost_usd": 0.05,
        "cost_by_type": {"input": 0.001, "cache_write": 0.045, "output": 0.004},
    }
    status, got, _ = request(
        f"{collector.url}/v1/push",
        method="POST",
        token=token,
        body={"schema": "agentmeter.push/1", "device_id": "device-0002", "rollups": [item]},
    )
    assert status == 200 and got["accepted"]["rollups"] == 1, got
    admin = collector.token("finance@example.com", admin=True)
    status, body, _ = request(f"{collector.url}/v1/export/focus?format=json", token=admin)
    assert status == 200 and body["focus_version"] == focus.FOCUS_VERSION
    rows = {r["x_TokenType"]: r for r in body["rows"]}
    assert set(rows) == {"input", "cache_write", "output"}
    assert rows["cache_write"]["ConsumedQuantity"] == 3000
    assert math.isclose(sum(r["ListCost"] for r in rows.values()), 0.05, abs_tol=1e-12)
