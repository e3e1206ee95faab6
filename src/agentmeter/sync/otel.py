"""OpenTelemetry GenAI metrics over OTLP, for teams that already run telemetry infrastructure.

Names follow the OpenTelemetry GenAI semantic conventions (semantic-conventions-genai, "inference token
metrics"). Those replaced the single `gen_ai.client.token.usage` histogram (dimensioned by `gen_ai.token.type`)
with one monotonic counter per token category, broken down by `gen_ai.token.modality`, plus per-operation
histograms that are not:

    gen_ai.client.inference.usage.input_tokens              counter, input including cached tokens
    gen_ai.client.inference.usage.output_tokens             counter, output including reasoning tokens
    gen_ai.client.inference.usage.cache_read.input_tokens   counter, subset of input
    gen_ai.client.inference.usage.cache_write.input_tokens  counter, subset of input
    gen_ai.client.inference.usage.reasoning.output_tokens   counter, subset of output
    gen_ai.client.inference.operation.input_tokens          histogram, one observation per request
    gen_ai.client.inference.operation.output_tokens         histogram

`[sync] otel_semconv = "legacy"` sends the old histogram instead (what agentmeter sent before), "both" sends
both while dashboards move. `agentmeter.cost` (USD) is sent either way. Providers do not break usage down by
modality, so the counters carry `gen_ai.token.modality = "unknown"`, as the conventions ask.

Attributes stay low-cardinality: agent, team and cost centre; the developer and the repository only when
`[sync] otel_attributes` lists them.

Where to send it: `[sync] otlp_endpoint`, else the standard variables — OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
(used as given), OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/metrics); OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL
(http/protobuf; grpc when its exporter is installed); headers, timeout, compression and certificate from
OTEL_EXPORTER_OTLP_[METRICS_]* as the SDK's exporter reads them.

Delta temporality, because every export is a fresh provider over rows not exported before; the watermark
(`otel_rowid`, the last exported request row) moves only when the receiver accepted the batch.

The SDK is the optional `[otel]` extra, imported only here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..core.clock import Clock
from ..home.config import Config
from ..ledger import sync as q

INSTALL_HINT = "pip install 'agentmeter[otel]' (opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http)"
GRPC_HINT = "pip install 'agentmeter[otel-grpc]', or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
# Semantic-conventions GenAI names, hardcoded: the Python semconv package marks its GenAI constants as moved.
LEGACY_TOKEN_USAGE = "gen_ai.client.token.usage"
USAGE = "gen_ai.client.inference.usage."
OPERATION = "gen_ai.client.inference.operation."
INPUT = ("input_tokens", "cache_read_tokens", "cache_write_tokens")  # the ledger's buckets (DESIGN.md section 6)
COUNTERS = {  # name → (the ledger columns it adds up, description)
    USAGE + "input_tokens": (INPUT, "The number of input (prompt) tokens used, including cached tokens"),
    USAGE + "output_tokens": (("output_tokens",), "The number of output tokens used, including reasoning tokens"),
    USAGE + "cache_read.input_tokens": (("cache_read_tokens",), "Input tokens served from the provider's cache"),
    USAGE + "cache_write.input_tokens": (("cache_write_tokens",), "Input tokens written to the provider's cache"),
    USAGE + "reasoning.output_tokens": (("reasoning_tokens",), "Output tokens spent on reasoning"),
}
HISTOGRAMS = {OPERATION + "input_tokens": INPUT, OPERATION + "output_tokens": ("output_tokens",)}
COST = "agentmeter.cost"
BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
PROVIDER_NAMES = {"anthropic": "anthropic", "openai": "openai", "gemini": "gcp.gemini", "google": "gcp.gemini"}
PROTOCOLS = ("http/protobuf", "grpc", "http/json")
BATCH = 5000


@dataclass(frozen=True)
class Target:
    endpoint: str
    protocol: str
    source: str  # where the endpoint came from: config or the variable's name


def metrics_url(endpoint: str) -> str:
    """`[sync] otlp_endpoint` may be the collector's base (http://host:4318) or the full metrics URL."""
    base = endpoint.strip().rstrip("/")
    return base if base.endswith("/v1/metrics") else base + "/v1/metrics"


def target(config: Config, env: Mapping[str, str] | None = None) -> Target | None:
    """Where the export goes, or None when nothing says. agentmeter's own setting wins over the generic
    variables; the metrics-specific variables win over the all-signals ones (the OTLP exporter spec)."""
    env = os.environ if env is None else env
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip()
    http = protocol != "grpc"
    if config.sync.otlp_endpoint:
        raw = config.sync.otlp_endpoint
        return Target(metrics_url(raw) if http else raw.strip(), protocol, "config")
    if env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        return Target(
            env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"].strip(), protocol, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
        )
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        raw = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        return Target(metrics_url(raw) if http else raw.strip(), protocol, "OTEL_EXPORTER_OTLP_ENDPOINT")
    return None


def configured(config: Config) -> bool:
    return target(config) is not None


def available() -> bool:
    try:
        import opentelemetry.exporter.otlp.proto.http.metric_exporter
        import opentelemetry.sdk.metrics  # noqa: F401
    except ImportError:
        return False
    return True


def _exporter_class(protocol: str):
    """The SDK's OTLP metric exporter for the protocol; None when it cannot be had (the reason is returned)."""
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        except ImportError:
            return None, f"OTLP over gRPC needs its exporter: {GRPC_HINT}"
        return OTLPMetricExporter, None
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter, None
    if protocol == "http/json":
        return None, "the OpenTelemetry Python exporter has no http/json; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
    return None, f"unknown OTLP protocol {protocol!r}; use one of: {', '.join(PROTOCOLS)}"


def export_once(access, config: Config, clock: Clock) -> dict[str, Any]:
    where = target(config)
    if where is None:
        return {"status": "not configured"}
    if not available():
        return {"status": "skipped", "reason": "the OpenTelemetry SDK is not installed", "hint": INSTALL_HINT}
    exporter_class, why = _exporter_class(where.protocol)
    if exporter_class is None:
        return {"status": "skipped", "endpoint": where.endpoint, "reason": why}
    head = {"endpoint": where.endpoint, "protocol": where.protocol, "semconv": config.sync.otel_semconv}
    state = access.read(q.read_state)
    if q.OTEL_ROWID not in state:
        # First export: start from now. History stays in the ledger (and the collector); a telemetry backend
        # would date it all to today anyway.
        start = access.read(q.max_request_rowid)
        access.write(lambda c: q.write_state(c, {q.OTEL_ROWID: start}))
        return {"status": "ok", **head, "requests": 0, "note": "first export: counting from now on"}
    watermark, exported = int(state[q.OTEL_ROWID]), 0
    while True:
        rows = access.read(lambda c, w=watermark: q.requests_after(c, w, BATCH))
        if not rows:
            break
        ok, why = _export(exporter_class, where, rows, config)
        if not ok:
            return {"status": "failed", **head, "requests": exported, "error": why}
        watermark = rows[-1]["rowid"]
        access.write(lambda c, w=watermark: q.write_state(c, {q.OTEL_ROWID: w}))
        exported += len(rows)
    return {"status": "ok", **head, "requests": exported}


def _attributes(r: dict[str, Any], config: Config) -> tuple[dict[str, str], dict[str, str]]:
    """(GenAI attributes, agentmeter's dimensions) for one request row."""
    provider = r["provider"] or "unknown"
    genai = {
        "gen_ai.operation.name": "generate_content" if provider in ("gemini", "google") else "chat",
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
        "gen_ai.request.model": r["model_requested"] or r["model_used"] or "unknown",
        "gen_ai.response.model": r["model_used"] or r["model_requested"] or "unknown",
    }
    ident, opted = config.identity, set(config.sync.otel_attributes)
    dims = {
        "agentmeter.agent": r["agent"],
        "agentmeter.team": ident.team or r["team"],
        "agentmeter.cost_center": ident.cost_center or r["cost_center"],
    }
    if "developer" in opted:
        dims["agentmeter.developer"] = ident.developer or r["developer"]
    if "repo" in opted:
        dims["agentmeter.repo"] = r["repo"]
    return genai, {k: v for k, v in dims.items() if v}


def _record(meter, rows: list[dict[str, Any]], config: Config) -> None:
    semconv = config.sync.otel_semconv
    current, legacy = semconv in ("current", "both"), semconv in ("legacy", "both")
    counters = (
        {name: meter.create_counter(name, unit="{token}", description=desc) for name, (_cols, desc) in COUNTERS.items()}
        if current
        else {}
    )
    # Bucket boundaries come from a View (see _export): the instrument advisory needs a newer SDK than 1.25.
    histograms = (
        {
            name: meter.create_histogram(name, unit="{token}", description="Tokens per inference operation")
            for name in HISTOGRAMS
        }
        if current
        else {}
    )
    old = (
        meter.create_histogram(LEGACY_TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used")
        if legacy
        else None
    )
    cost = meter.create_counter(COST, unit="USD", description="Cost of model calls at list price, as metered")

    def total(r: dict[str, Any], cols: tuple[str, ...]) -> int:
        return sum(r[c] or 0 for c in cols)

    for r in rows:
        genai, dims = _attributes(r, config)
        for name, counter in counters.items():
            counter.add(total(r, COUNTERS[name][0]), {**genai, "gen_ai.token.modality": "unknown", **dims})
        for name, histogram in histograms.items():
            histogram.record(total(r, HISTOGRAMS[name]), {**genai, **dims})
        if old is not None:
            # The old convention also counts cached prompt tokens as input tokens.
            old.record(total(r, INPUT), {**genai, "gen_ai.token.type": "input", **dims})
            old.record(r["output_tokens"] or 0, {**genai, "gen_ai.token.type": "output", **dims})
        if r["cost_usd"]:
            cost.add(float(r["cost_usd"]), {**genai, **dims})


def _export(exporter_class, where: Target, rows: list[dict[str, Any]], config: Config) -> tuple[bool, str | None]:
    from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricExportResult
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    delta = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    reader = InMemoryMetricReader(preferred_temporality=delta)
    resource = Resource.create({"service.name": "agentmeter", "service.version": __version__})
    buckets = View(instrument_type=Histogram, aggregation=ExplicitBucketHistogramAggregation(BUCKETS))
    provider = MeterProvider(metric_readers=[reader], resource=resource, views=[buckets])
    _record(provider.get_meter("agentmeter", __version__), rows, config)
    data = reader.get_metrics_data()
    provider.shutdown()
    # Headers, compression, certificate and (when set) timeout come from OTEL_EXPORTER_OTLP_* via the exporter.
    timeout_set = any(os.environ.get(f"OTEL_EXPORTER_OTLP_{s}TIMEOUT") for s in ("METRICS_", ""))
    exporter = exporter_class(endpoint=where.endpoint, timeout=None if timeout_set else 5)
    try:
        result = exporter.export(data)
    except Exception as exc:  # the exporter normally reports failure by result; be safe either way
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        exporter.shutdown()
    if result != MetricExportResult.SUCCESS:
        return False, f"the OTLP receiver at {where.endpoint} did not accept the export"
    return True, None
