"""OpenTelemetry export over OTLP/HTTP, received by a local receiver (aiohttp) and decoded from protobuf with
opentelemetry-proto: the current GenAI semantic-convention names (gen_ai.client.inference.*), the legacy
gen_ai.client.token.usage behind `[sync] otel_semconv`, the standard OTEL_EXPORTER_OTLP_* variables, and
developer/repo attributes only when configured."""

from __future__ import annotations

import pytest
from aiohttp import web

from agentmeter.core.clock import SystemClock
from agentmeter.core.errors import ConfigError
from agentmeter.home.config import Config, Identity, Sync, load_config
from agentmeter.ledger.access import DirectAccess
from agentmeter.sync import otel
from conftest import LoopThread

from .helpers import Client

pytest.importorskip("opentelemetry.sdk.metrics", reason="the [otel] extra is not installed")
metrics_service_pb2 = pytest.importorskip("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2")


OTEL_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
)


@pytest.fixture(autouse=True)
def clean_otel_env(monkeypatch):
    """The developer's shell may export OTEL_* for their own services; each test sets what it means."""
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver():
    got: list = []
    lt = LoopThread()

    async def metrics(request: web.Request) -> web.Response:
        msg = metrics_service_pb2.ExportMetricsServiceRequest()
        msg.ParseFromString(await request.read())
        got.append((request.headers.get("Content-Type"), msg, request.path, dict(request.headers)))
        return web.Response(
            body=metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def start():
        app = web.Application()
        app.router.add_post("/v1/metrics", metrics)
        app.router.add_post("/otlp/custom-metrics", metrics)
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


def metrics_of(msg) -> dict:
    return {m.name: m for rm in msg.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def exported(tmp_path, config: Config, got: list) -> dict:
    """Alice's usage exported once (after the first export sets the watermark): the decoded metrics by name."""
    client = Client(tmp_path / "c", "alice@example.com", "payments")
    client.add_usage(1)  # before the first export: history is not re-dated to today
    access = DirectAccess(client.path)
    try:
        first = otel.export_once(access, config, SystemClock())
        assert first["status"] == "ok" and first["requests"] == 0 and not got
        client.add_usage(3, cost=0.25)
        client.add_usage(2, agent="codex", model="gpt-5.1", cost=0.5, repo="github.com/acme/api")
        r = otel.export_once(access, config, SystemClock())
        assert r["status"] == "ok" and r["requests"] == 5, r
        assert otel.export_once(access, config, SystemClock())["requests"] == 0  # nothing twice
    finally:
        access.close()
    assert len(got) == 1
    return metrics_of(got[0][1])


def alice(url: str = "", **sync) -> Config:
    return Config(
        identity=Identity(developer="alice@example.com", team="payments", cost_center="CC-9"),
        sync=Sync(otlp_endpoint=url, **sync),
    )


def test_the_export_uses_the_current_genai_token_metrics(tmp_path, receiver):
    url, got = receiver
    metrics = exported(tmp_path, alice(url), got)
    ctype, msg, path, _ = got[0]
    assert ctype == "application/x-protobuf" and path == "/v1/metrics"
    resource = msg.resource_metrics[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "agentmeter"
    assert set(metrics) == {
        "gen_ai.client.inference.usage.input_tokens",
        "gen_ai.client.inference.usage.output_tokens",
        "gen_ai.client.inference.usage.cache_read.input_tokens",
        "gen_ai.client.inference.usage.cache_write.input_tokens",
        "gen_ai.client.inference.usage.reasoning.output_tokens",
        "gen_ai.client.inference.operation.input_tokens",
        "gen_ai.client.inference.operation.output_tokens",
        "agentmeter.cost",
    }
    assert "gen_ai.client.token.usage" not in metrics  # the old name only behind the setting

    def by_model(name) -> dict:
        m = metrics[name]
        assert m.unit == "{token}" and m.sum.is_monotonic  # counters, not histograms
        assert m.sum.aggregation_temporality == 1  # AGGREGATION_TEMPORALITY_DELTA
        return {attrs(p)["gen_ai.request.model"]: p for p in m.sum.data_points}

    inputs = by_model("gen_ai.client.inference.usage.input_tokens")
    assert inputs["claude-sonnet-4-5"].as_int == 3 * (100 + 1000 + 50)  # input includes the cached tokens
    assert by_model("gen_ai.client.inference.usage.cache_read.input_tokens")["claude-sonnet-4-5"].as_int == 3000
    assert by_model("gen_ai.client.inference.usage.cache_write.input_tokens")["gpt-5.1"].as_int == 100
    assert by_model("gen_ai.client.inference.usage.output_tokens")["gpt-5.1"].as_int == 2 * 40
    assert by_model("gen_ai.client.inference.usage.reasoning.output_tokens")["gpt-5.1"].as_int == 0
    a = attrs(inputs["claude-sonnet-4-5"])
    assert a["gen_ai.token.modality"] == "unknown"  # providers do not break usage down by modality
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.response.model"] == "claude-sonnet-4-5" and a["agentmeter.agent"] == "claude"
    assert a["agentmeter.team"] == "payments" and a["agentmeter.cost_center"] == "CC-9"
    assert "gen_ai.token.type" not in a

    op = metrics["gen_ai.client.inference.operation.input_tokens"]
    points = {attrs(p)["gen_ai.request.model"]: p for p in op.histogram.data_points}
    assert points["claude-sonnet-4-5"].count == 3 and points["claude-sonnet-4-5"].sum == 3 * 1150
    assert list(points["gpt-5.1"].explicit_bounds)[:3] == [1, 4, 16]
    assert "gen_ai.token.modality" not in attrs(points["gpt-5.1"])  # percentiles across modalities do not add up

    cost = metrics["agentmeter.cost"]
    assert cost.unit == "USD" and cost.sum.is_monotonic
    assert abs(sum(p.as_double for p in cost.sum.data_points) - (3 * 0.25 + 2 * 0.5)) < 1e-9


def test_developer_and_repo_stay_out_of_attributes_unless_configured(tmp_path, receiver):
    url, got = receiver
    default = exported(tmp_path / "a", alice(url), got)
    for m in default.values():
        points = m.sum.data_points if m.HasField("sum") else m.histogram.data_points
        for p in points:
            assert not {"agentmeter.developer", "agentmeter.repo"} & set(attrs(p))
    got.clear()
    opted = exported(tmp_path / "b", alice(url, otel_attributes=("developer", "repo")), got)
    repos = {
        (attrs(p)["agentmeter.developer"], attrs(p)["agentmeter.repo"])
        for p in opted["gen_ai.client.inference.usage.input_tokens"].sum.data_points
    }
    assert repos == {("alice@example.com", "github.com/acme/app"), ("alice@example.com", "github.com/acme/api")}


def test_the_legacy_names_stay_behind_the_setting(tmp_path, receiver):
    url, got = receiver
    metrics = exported(tmp_path / "legacy", alice(url, otel_semconv="legacy"), got)
    assert set(metrics) == {"gen_ai.client.token.usage", "agentmeter.cost"}
    usage = metrics["gen_ai.client.token.usage"]
    assert usage.unit == "{token}"
    points = {(attrs(p)["gen_ai.request.model"], attrs(p)["gen_ai.token.type"]): p for p in usage.histogram.data_points}
    assert set(points) == {
        ("claude-sonnet-4-5", "input"),
        ("claude-sonnet-4-5", "output"),
        ("gpt-5.1", "input"),
        ("gpt-5.1", "output"),
    }
    assert points[("claude-sonnet-4-5", "input")].count == 3 and points[("claude-sonnet-4-5", "input")].sum == 3450
    got.clear()
    both = exported(tmp_path / "both", alice(url, otel_semconv="both"), got)
    assert {"gen_ai.client.token.usage", "gen_ai.client.inference.usage.input_tokens"} <= set(both)


def test_the_standard_otlp_variables_choose_endpoint_and_headers(tmp_path, receiver, monkeypatch):
    url, got = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)  # a base: /v1/metrics is appended
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team-key=sk-otel-test-1,x-env=ci")
    assert otel.target(alice()) == otel.Target(url + "/v1/metrics", "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT")
    metrics = exported(tmp_path / "generic", alice(), got)
    assert "gen_ai.client.inference.usage.input_tokens" in metrics
    _, _, path, headers = got[0]
    assert path == "/v1/metrics" and headers["x-team-key"] == "sk-otel-test-1" and headers["x-env"] == "ci"

    # The metrics-only variables win over the all-signals ones, and the endpoint is used as given.
    got.clear()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", url + "/otlp/custom-metrics")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-team-key=sk-otel-test-2")
    exported(tmp_path / "signal", alice(), got)
    _, _, path, headers = got[0]
    assert path == "/otlp/custom-metrics" and headers["x-team-key"] == "sk-otel-test-2"

    # agentmeter's own setting wins over the generic variables.
    assert otel.target(alice("http://127.0.0.1:9")).endpoint == "http://127.0.0.1:9/v1/metrics"


def test_the_variables_alone_turn_the_export_on(monkeypatch):
    assert otel.target(alice()) is None and not otel.configured(alice())
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel.example.internal:4318/")
    assert otel.configured(alice())
    assert otel.target(alice()).endpoint == "http://otel.example.internal:4318/v1/metrics"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")  # gRPC takes the endpoint as it is
    assert otel.target(alice()) == otel.Target(
        "http://otel.example.internal:4318/", "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def test_a_protocol_the_exporter_cannot_speak_is_skipped_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json")
    client = Client(tmp_path / "c", "alice@example.com")
    access = DirectAccess(client.path)
    try:
        r = otel.export_once(access, alice("http://127.0.0.1:9"), SystemClock())
    finally:
        access.close()
    assert r["status"] == "skipped" and "http/protobuf" in r["reason"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('otel_semconv = "newest"', "unknown value 'newest'"),
        ('otel_attributes = ["session"]', "unknown value 'session'"),
        ('otel_attributes = "repo"', "must be a list of strings"),
    ],
)
def test_otel_settings_are_checked(tmp_path, line, problem):
    path = tmp_path / "config.toml"
    path.write_text(f"[sync]\n{line}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert problem in err.value.message and err.value.hint
    path.write_text('[sync]\notel_semconv = "both"\notel_attributes = ["repo", "developer", "repo"]\n')
    ok = load_config(path).sync
    assert ok.otel_semconv == "both" and ok.otel_attributes == ("repo", "developer")


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


def test_grpc_when_the_variables_ask_for_it(tmp_path, monkeypatch):
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc sends to a real gRPC MetricsService on loopback."""
    grpc = pytest.importorskip("grpc", reason="grpcio (opentelemetry-exporter-otlp-proto-grpc) is not installed")
    pytest.importorskip(
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
        reason="opentelemetry-exporter-otlp-proto-grpc is not installed",
    )
    from concurrent import futures

    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc

    got: list = []

    class Service(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request, context):
            got.append((request, None, "grpc", dict(context.invocation_metadata())))
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team-key=sk-otel-test-3")
        client = Client(tmp_path / "c", "alice@example.com", "payments")
        access = DirectAccess(client.path)
        try:
            otel.export_once(access, alice(), SystemClock())
            client.add_usage(2)
            r = otel.export_once(access, alice(), SystemClock())
        finally:
            access.close()
        assert r["status"] == "ok" and r["protocol"] == "grpc" and r["requests"] == 2, r
        assert len(got) == 1
        got_msgs = metrics_of(got[0][0])
        assert got[0][3]["x-team-key"] == "sk-otel-test-3"
        assert got_msgs["gen_ai.client.inference.usage.input_tokens"].sum.data_points[0].as_int == 2 * 1150
    finally:
        server.stop(None)
