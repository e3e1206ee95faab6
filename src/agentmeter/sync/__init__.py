"""Team sync: summaries to the collector (idempotent), team caps back, and the OpenTelemetry export."""
