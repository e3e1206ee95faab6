"""docs/grafana-dashboard.json: valid against a JSON schema of Grafana's dashboard model, and every panel's
PromQL names only series the collector's /metrics really exposes.

No maintained JSON Schema of the classic dashboard model is published (Grafana defines it in CUE), so
tests/fixtures/grafana-dashboard.schema.json is a faithful translation of the Dashboard kind in grafana/grafana
kinds/dashboard/dashboard_kind.cue (required fields, enums, GridPos bounds, Panel/RowPanel/FieldConfigSource/
VariableModel), written for this test. That the queries also run and return data is checked against a real
Prometheus in test_prometheus.py.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from agentmeter.collector import metrics

from .observed import observed_collector
from .test_metrics import scrape

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (the [test] extra)")
parser = pytest.importorskip("prometheus_client.parser", reason="prometheus-client (the [collector] extra)")

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
SCHEMA = ROOT / "tests" / "fixtures" / "grafana-dashboard.schema.json"
# PromQL words the dashboard may use that are not series names.
PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "count",
    "avg",
    "by",
    "without",
    "topk",
    "bottomk",
    "time",
    "vector",
    "delta",
    "rate",
    "increase",
    "clamp_min",
    "sort_desc",
    "sort",
    "or",
    "and",
    "unless",
    "label_values",
}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def validator():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def panels(d: dict) -> list[dict]:
    out = []
    for p in d["panels"]:
        out.extend(p.get("panels", []) if p["type"] == "row" else [p])
    return out


def series_named(expr: str) -> set[str]:
    """Metric names in a PromQL expression: what is left once label matchers, grouping lists, ranges, strings,
    numbers and PromQL's own words are taken out. Anything unexpected is returned too, so it fails the test."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return words - PROMQL_WORDS


def metrics_labels(text: str, name: str) -> set[str]:
    return {
        k for f in parser.text_string_to_metric_families(text) if f.name == name for s in f.samples for k in s.labels
    }


def test_the_dashboard_matches_grafanas_dashboard_schema():
    d = dashboard()
    errors = sorted(validator().iter_errors(d), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    ps = panels(d)
    assert len({p["id"] for p in ps}) == len(ps)  # Grafana keys panels by id
    for p in ps:
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]  # the grid is 24 columns wide
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), p["title"]
        assert p["datasource"]["uid"] == "${datasource}"
    assert {v["name"] for v in d["templating"]["list"]} >= {"datasource", "team"}


def test_the_schema_is_not_vacuous():
    v, d = validator(), dashboard()
    for breakage in (
        lambda x: x["panels"][0]["gridPos"].update(w=30),
        lambda x: x["panels"][0].pop("fieldConfig"),
        lambda x: x.update(graphTooltip=5),
        lambda x: x["panels"][0].update(type=""),
    ):
        broken = copy.deepcopy(d)
        breakage(broken)
        assert list(v.iter_errors(broken))


def test_the_panels_cover_what_the_issue_asks():
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in panels(dashboard())}
    joined = "\n".join(exprs.values())
    assert "agentmeter_team_cap_usd" in joined and "agentmeter_month_to_date_spend_usd" in joined  # spend vs cap
    assert "sum by (type) (agentmeter_month_to_date_tokens" in joined  # tokens by type
    assert "topk(10, sum by (provider, model)" in joined  # top models
    assert "agentmeter_developer_last_push_timestamp_seconds" in joined  # stale developers


def test_every_panel_names_only_series_that_metrics_exposes(tmp_path, collector_db):
    c, tokens = observed_collector(tmp_path, collector_db)
    try:
        status, text, _ = scrape(c.url, tokens["admin"])
    finally:
        c.close()
    assert status == 200
    exposed = {f.name for f in parser.text_string_to_metric_families(text)}
    assert exposed == {metrics.PREFIX + n for n in metrics.SERIES}
    for p in panels(dashboard()):
        for t in p["targets"]:
            named = series_named(t["expr"])
            assert named, f"{p['title']}: no series in {t['expr']!r}"
            assert named <= exposed, f"{p['title']}: {sorted(named - exposed)} not exposed by /metrics"
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            name, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", var["definition"]).groups()
            assert name in exposed and label in metrics_labels(text, name)


def test_the_series_check_catches_a_misspelt_series():
    assert series_named('sum by (team) (agentmeter_month_to_date_spend_usd{team=~"$team"})') == {
        "agentmeter_month_to_date_spend_usd"
    }
    assert series_named("sum(agentmeter_spend_usd_total[5m])") == {"agentmeter_spend_usd_total"}
