"""OpenTelemetry GenAI metrics over OTLP/HTTP, for teams that already run telemetry infrastructure.

Each metered request since the last export is recorded once: `gen_ai.client.token.usage` (a histogram in
`{token}`, one observation per token type) and `agentmeter.cost` (a counter in USD) with agentmeter's
dimensions. Delta temporality, because every export is a fresh provider over rows not exported before;
the watermark (`otel_rowid`, the last exported request row) moves only when the receiver accepted the batch.

The SDK is the optional `[otel]` extra, imported only here.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..core.clock import Clock
from ..home.config import Config
from ..ledger import sync as q

INSTALL_HINT = "pip install 'agentmeter[otel]' (opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http)"
# Semantic-conventions GenAI names, hardcoded: the Python semconv package marks its GenAI constants as moved.
TOKEN_USAGE = "gen_ai.client.token.usage"
COST = "agentmeter.cost"
BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
PROVIDER_NAMES = {"anthropic": "anthropic", "openai": "openai", "gemini": "gcp.gemini", "google": "gcp.gemini"}
BATCH = 5000


def metrics_url(endpoint: str) -> str:
    """`[sync] otlp_endpoint` may be the collector's base (http://host:4318) or the full metrics URL."""
    base = endpoint.strip().rstrip("/")
    return base if base.endswith("/v1/metrics") else base + "/v1/metrics"


def available() -> bool:
    try:
        import opentelemetry.exporter.otlp.proto.http.metric_exporter
        import opentelemetry.sdk.metrics  # noqa: F401
    except ImportError:
        return False
    return True


def export_once(access, config: Config, clock: Clock) -> dict[str, Any]:
    endpoint = config.sync.otlp_endpoint
    if not endpoint:
        return {"status": "not configured"}
    if not available():
        return {"status": "skipped", "reason": "the OpenTelemetry SDK is not installed", "hint": INSTALL_HINT}
    url = metrics_url(endpoint)
    state = access.read(q.read_state)
    if q.OTEL_ROWID not in state:
        # First export: start from now. History stays in the ledger (and the collector); a telemetry backend
        # would date it all to today anyway.
        start = access.read(q.max_request_rowid)
        access.write(lambda c: q.write_state(c, {q.OTEL_ROWID: start}))
        return {"status": "ok", "endpoint": url, "requests": 0, "note": "first export: counting from now on"}
    watermark, exported = int(state[q.OTEL_ROWID]), 0
    while True:
        rows = access.read(lambda c, w=watermark: q.requests_after(c, w, BATCH))
        if not rows:
            break
        ok, why = _export(url, rows, config)
        if not ok:
            return {"status": "failed", "endpoint": url, "requests": exported, "error": why}
        watermark = rows[-1]["rowid"]
        access.write(lambda c, w=watermark: q.write_state(c, {q.OTEL_ROWID: w}))
        exported += len(rows)
    return {"status": "ok", "endpoint": url, "requests": exported}


def _export(url: str, rows: list[dict[str, Any]], config: Config) -> tuple[bool, str | None]:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricExportResult
    from opentelemetry.sdk.resources import Resource

    delta = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    reader = InMemoryMetricReader(preferred_temporality=delta)
    resource = Resource.create({"service.name": "agentmeter", "service.version": __version__})
    provider = MeterProvider(metric_readers=[reader], resource=resource)
    meter = provider.get_meter("agentmeter", __version__)
    usage = meter.create_histogram(TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used",
                                   explicit_bucket_boundaries_advisory=BUCKETS)
    cost = meter.create_counter(COST, unit="USD", description="Cost of model calls at list price, as metered")
    ident = config.identity
    for r in rows:
        genai = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": PROVIDER_NAMES.get(r["provider"], r["provider"]),
            "gen_ai.request.model": r["model_requested"] or r["model_used"] or "unknown",
            "gen_ai.response.model": r["model_used"] or r["model_requested"] or "unknown",
        }
        dims = {k: v for k, v in {
            "agentmeter.agent": r["agent"], "agentmeter.repo": r["repo"],
            "agentmeter.developer": ident.developer or r["developer"], "agentmeter.team": ident.team or r["team"],
            "agentmeter.cost_center": ident.cost_center or r["cost_center"]}.items() if v}
        # Semantic conventions count cached prompt tokens as input tokens.
        prompt = (r["input_tokens"] or 0) + (r["cache_read_tokens"] or 0) + (r["cache_write_tokens"] or 0)
        usage.record(prompt, {**genai, "gen_ai.token.type": "input", **dims})
        usage.record(r["output_tokens"] or 0, {**genai, "gen_ai.token.type": "output", **dims})
        if r["cost_usd"]:
            cost.add(float(r["cost_usd"]), {**genai, **dims})
    data = reader.get_metrics_data()
    provider.shutdown()
    exporter = OTLPMetricExporter(endpoint=url, timeout=5)
    try:
        result = exporter.export(data)
    except Exception as exc:  # the exporter normally reports failure by result; be safe either way
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        exporter.shutdown()
    if result != MetricExportResult.SUCCESS:
        return False, f"the OTLP receiver at {url} did not accept the export"
    return True, None
