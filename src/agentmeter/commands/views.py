"""Shaping ledger rows into the contract's JSON objects (DESIGN section 6). Pure: dicts in, dicts out."""

from __future__ import annotations

import json
from typing import Any

from ..core.clock import ms_to_iso

CONTRACT_BUCKETS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")


def cache_hit_rate(row: dict[str, Any]) -> float | None:
    denom = (row.get("input_tokens") or 0) + (row.get("cache_read_tokens") or 0) + (row.get("cache_write_tokens") or 0)
    return round((row.get("cache_read_tokens") or 0) / denom, 4) if denom else None


def session_view(row: dict[str, Any]) -> dict[str, Any]:
    tags = row.get("tags")
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except ValueError:
            tags = {}
    models = sorted(m for m in (row.get("models") or "").split(",") if m)
    out = {
        "id": row["id"],
        "agent": row["agent"],
        "agent_session_id": row.get("agent_session_id"),
        "repo": row.get("repo"),
        "branch": row.get("branch"),
        "cwd": row.get("cwd"),
        "developer": row.get("developer"),
        "team": row.get("team"),
        "cost_center": row.get("cost_center"),
        "tags": tags or {},
        "budget_usd": row.get("budget_usd"),
        "started_at": ms_to_iso(row.get("started_at")),
        "ended_at": ms_to_iso(row.get("ended_at")),
        "exit_code": row.get("exit_code"),
        "end_commit": row.get("end_commit"),
        "requests": row.get("requests", 0),
    }
    for b in (*CONTRACT_BUCKETS, "cache_write_5m_tokens", "cache_write_1h_tokens"):
        out[b] = int(row.get(b) or 0)
    out["cost_usd"] = round(float(row.get("cost_usd") or 0), 6)
    out["cache_hit_rate"] = cache_hit_rate(row)
    # An agent retries after an error or an interrupted stream; each attempt is its own billed request.
    out["retries"] = int(row.get("retries") or 0)
    out["downgrades"] = int(row.get("downgrades") or 0)
    out["refusals"] = int(row.get("refusals") or 0)
    out["unpriced_requests"] = int(row.get("unpriced_requests") or 0)
    out["models"] = models
    return out


def request_view(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "request_id": row["request_id"],
        "started_at": ms_to_iso(row["started_at"]),
        "provider": row["provider"],
        "api": row["api"],
        "method": row["method"],
        "path": row["path"],
        "model_requested": row["model_requested"],
        "model_used": row["model_used"],
        "stream": bool(row["stream"]),
        "status": row["status"],
        "http_status": row["http_status"],
    }
    for b in (*CONTRACT_BUCKETS, "cache_write_5m_tokens", "cache_write_1h_tokens"):
        out[b] = int(row.get(b) or 0)
    out.update(
        cost_usd=row["cost_usd"],
        price_source=row["price_source"],
        price_model=row["price_model"],
        price_version=row["price_version"],
        unpriced=bool(row["unpriced"]),
        decision=row["decision"],
        reason=row["reason"],
        partial=bool(row["partial"]),
        unmetered=bool(row["unmetered"]),
        subscription=bool(row["subscription"]),
        agent_session_id=row["agent_session_id"],
        agent_id=row["agent_id"],
        upstream_request_id=row["upstream_request_id"],
        response_id=row["response_id"],
        ttft_ms=None if row["ttft_ms"] is None else round(row["ttft_ms"], 2),
        duration_ms=None if row["duration_ms"] is None else round(row["duration_ms"], 2),
    )
    return out
