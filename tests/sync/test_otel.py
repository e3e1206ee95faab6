"""OpenTelemetry export: `gen_ai.client.token.usage` and `agentmeter.cost` over OTLP/HTTP, received by a local
receiver and decoded from protobuf."""

from __future__ import annotations

import pytest
from aiohttp import web

from agentmeter.core.clock import SystemClock
from agentmeter.home.config import Config, Identity, Sync
from agentmeter.ledger.access import DirectAccess
from agentmeter.sync import otel
from conftest import LoopThread

from .helpers import Client

pytest.importorskip("opentelemetry.sdk.metrics", reason="the [otel] extra is not installed")
metrics_service_pb2 = pytest.importorskip("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2")


@pytest.fixture
def receiver():
    got: list = []
    lt = LoopThread()

    async def metrics(request: web.Request) -> web.Response:
        msg = metrics_service_pb2.ExportMetricsServiceRequest()
        msg.ParseFromString(await request.read())
        got.append((request.headers.get("Content-Type"), msg))
        return web.Response(body=metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def start():
        app = web.Application()
        app.router.add_post("/v1/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = lt.run(start())
    yield f"http://127.0.0.1:{port}", got
    lt.run(runner.cleanup())
    lt.stop()


def attrs(point) -> dict:
    return {a.key: a.value.string_value for a in point.attributes}


def test_otlp_export_is_received_and_decoded(tmp_path, receiver):
    url, got = receiver
    client = Client(tmp_path / "c", "alice@example.com", "payments")
    config = Config(identity=Identity(developer="alice@example.com", team="payments", cost_center="CC-9"),
                    sync=Sync(otlp_endpoint=url))
    client.add_usage(1)  # before the first export: history is not re-dated to today
    access = DirectAccess(client.path)
    try:
        first = otel.export_once(access, config, SystemClock())
        assert first["status"] == "ok" and first["requests"] == 0 and not got
        client.add_usage(3, cost=0.25)
        client.add_usage(2, agent="codex", model="gpt-5.1", cost=0.5)
        r = otel.export_once(access, config, SystemClock())
        assert r == {"status": "ok", "endpoint": url + "/v1/metrics", "requests": 5}
        assert otel.export_once(access, config, SystemClock())["requests"] == 0  # nothing twice
    finally:
        access.close()

    assert len(got) == 1
    ctype, msg = got[0]
    assert ctype == "application/x-protobuf"
    resource = msg.resource_metrics[0]
    assert {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"] == "agentmeter"
    metrics = {m.name: m for sm in resource.scope_metrics for m in sm.metrics}
    usage, cost = metrics["gen_ai.client.token.usage"], metrics["agentmeter.cost"]
    assert usage.unit == "{token}" and cost.unit == "USD"
    points = {(attrs(p)["gen_ai.request.model"], attrs(p)["gen_ai.token.type"]): p for p in usage.histogram.data_points}
    assert set(points) == {("claude-sonnet-4-5", "input"), ("claude-sonnet-4-5", "output"),
                           ("gpt-5.1", "input"), ("gpt-5.1", "output")}
    claude_in = points[("claude-sonnet-4-5", "input")]
    assert claude_in.count == 3 and claude_in.sum == 3 * (100 + 1000 + 50)  # cached prompt tokens count as input
    assert points[("gpt-5.1", "output")].sum == 2 * 40
    a = attrs(claude_in)
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.response.model"] == "claude-sonnet-4-5" and a["agentmeter.agent"] == "claude"
    assert a["agentmeter.team"] == "payments" and a["agentmeter.cost_center"] == "CC-9"
    assert list(usage.histogram.data_points[0].explicit_bounds)[:3] == [1, 4, 16]
    assert cost.sum.is_monotonic
    total = sum(p.as_double for p in cost.sum.data_points)
    assert abs(total - (3 * 0.25 + 2 * 0.5)) < 1e-9
    assert {attrs(p)["agentmeter.agent"] for p in cost.sum.data_points} == {"claude", "codex"}


def test_an_unreachable_receiver_keeps_the_rows_for_next_time(tmp_path, receiver):
    url, got = receiver
    client = Client(tmp_path / "c", "alice@example.com")
    down = Config(sync=Sync(otlp_endpoint="http://127.0.0.1:9/v1/metrics"))
    access = DirectAccess(client.path)
    try:
        otel.export_once(access, down, SystemClock())
        client.add_usage(2)
        failed = otel.export_once(access, down, SystemClock())
        assert failed["status"] == "failed" and failed["requests"] == 0
        ok = otel.export_once(access, Config(sync=Sync(otlp_endpoint=url)), SystemClock())
        assert ok["requests"] == 2 and len(got) == 1
    finally:
        access.close()


def test_without_the_sdk_sync_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(otel, "available", lambda: False)
    client = Client(tmp_path / "c", "alice@example.com")
    access = DirectAccess(client.path)
    try:
        r = otel.export_once(access, Config(sync=Sync(otlp_endpoint="http://127.0.0.1:9")), SystemClock())
    finally:
        access.close()
    assert r["status"] == "skipped" and "agentmeter[otel]" in r["hint"]
