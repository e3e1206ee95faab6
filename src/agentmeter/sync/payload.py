"""What a push carries: summary rows with deterministic keys. Counts, costs and attribution only.

A rollup row is one (day, agent, provider, model, repo, subscription) of this device's ledger, attributed
to the developer, team and cost center; a session line item is one session's sums. Each item's key is
the sha256 of its dimensions and the device id, so pushing the same row again replaces it on the collector
instead of adding to it, and two machines of one developer add up. Identity is an attribute, not part of
the key: correcting `[identity]` re-attributes the rows already pushed rather than duplicating them.

Never included: prompts or completions (the ledger has none), cwd or any local path, request paths, ids of
upstream requests. Session line items carry the session's `run --tag K=V` labels (chargeback: ticket,
feature, cost centre; at most 20), the commit it ended on, and, when it spawned any, its sub-agents' sums
(`subagents`: Claude Code's opaque agent ids, at most 50; the main agent's part is the rest). A rollup row
with traffic from tagged sessions carries that share per tag set (`tag_split`, at most 20: the FOCUS export
on the collector splits the row by it, as the local export does).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, tzinfo
from typing import Any

from ..core.bounds import MAX_PUSH_COUNT, MAX_PUSH_USD, clip_text
from ..ledger.schema import TOKEN_COLUMNS
from ..pricing.focus import ListRates, split_cost

SCHEMA = "agentmeter.push/1"
MAX_SUBAGENTS = 50  # per session item, the costliest first (the collector refuses more)
MAX_TAG_PARTS = 20  # tag sets per rollup item, the costliest first; the rest stays untagged


def item_key(device_id: str, kind: str, *dims: Any) -> str:
    raw = json.dumps([device_id, kind, *dims], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def digest(item: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(item, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _tokens(row: dict[str, Any]) -> dict[str, int]:
    return {c: _n(row.get(c)) for c in TOKEN_COLUMNS}


def _n(value: Any) -> int:
    """A count the collector accepts (bounds.MAX_PUSH_COUNT): never the reason a push is refused."""
    return min(max(0, int(value or 0)), MAX_PUSH_COUNT)


def _usd(value: Any) -> float:
    return round(min(max(0.0, float(value or 0)), MAX_PUSH_USD), 9)


def _t(value: str | None) -> str | None:
    return clip_text(value)


def _tags(raw: str | dict | None) -> dict[str, str]:
    """A session's tags (JSON text in the ledger) as the collector accepts them: at most 20, text clipped."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(raw, dict):
        return {}
    items = sorted((str(k), str(v)) for k, v in raw.items() if k)[:20]
    return {clip_text(k) or "": clip_text(v) or "" for k, v in items}


def cost_by_type(row: dict[str, Any], rate: Any) -> dict[str, float]:
    """The row's recorded cost per token type (`pricing.focus.split_cost`, the split the local FOCUS export
    makes), so the collector's FOCUS rows are the client's. Rounded to 9 places; the parts still add up to the
    recorded cost to the ninth place (the biggest part takes the rounding remainder)."""
    parts = split_cost(row, rate)
    if not parts:
        return {}
    out = {k: round(v, 9) for k, v in parts.items()}
    biggest = max(out, key=lambda k: out[k])  # takes the rounding remainder: never pushed below zero
    out[biggest] = max(0.0, round(out[biggest] + float(row.get("cost_usd") or 0.0) - sum(out.values()), 9))
    return out


def rollup_items(rows: list[dict[str, Any]], device_id: str, identity: dict[str, Any], rates: ListRates | None):
    out = []
    for r in rows:
        dims = (r["day"], r["agent"], r["provider"], r["model"], r["repo"], int(r["subscription"]))
        item = {
            "key": item_key(device_id, "rollup", *dims),
            "day": r["day"],
            "agent": _t(r["agent"]),
            "provider": _t(r["provider"]),
            "model": _t(r["model"]),
            "repo": _t(r["repo"]),
            "subscription": bool(r["subscription"]),
            "team": _t(identity.get("team")),
            "cost_center": _t(identity.get("cost_center")),
            "requests": _n(r["requests"]),
            **_tokens(r),
            "cost_usd": _usd(r["cost_usd"]),
            "unpriced_requests": _n(r["unpriced_requests"]),
        }
        rate = rates.get(r["provider"], r["model"]) if rates else None
        item["cost_by_type"] = cost_by_type(r, rate)
        if r.get("tag_parts"):  # only when tagged: an untagged row's item (and digest) stays as it was
            item["tag_split"] = [
                {
                    "tags": _tags(p["tags"]),
                    "requests": _n(p["requests"]),
                    **_tokens(p),
                    "cost_usd": _usd(p["cost_usd"]),
                    "unpriced_requests": _n(p["unpriced_requests"]),
                    "cost_by_type": cost_by_type(p, rate),
                }
                for p in r["tag_parts"][:MAX_TAG_PARTS]
            ]
        out.append(item)
    return out


def session_items(rows: list[dict[str, Any]], device_id: str, identity: dict[str, Any], tz: tzinfo | None):
    out = []
    for s in rows:
        models = sorted({_t(m) for m in (s.get("models") or "").split(",") if m})[:50]
        out.append(
            {
                "key": item_key(device_id, "session", s["id"]),
                "session_id": _t(s["id"]),
                "agent": _t(s["agent"]),
                "repo": _t(s["repo"]),
                "branch": _t(s["branch"]),
                "team": _t(s.get("team") or identity.get("team")),
                "cost_center": _t(s.get("cost_center") or identity.get("cost_center")),
                "day": datetime.fromtimestamp(s["started_at"] / 1000, tz).astimezone(tz).date().isoformat(),
                "started_at": int(s["started_at"]),
                "ended_at": s["ended_at"],
                "requests": _n(s["requests"]),
                **_tokens(s),
                "cost_usd": _usd(s["cost_usd"]),
                "unpriced_requests": _n(s["unpriced_requests"]),
                "models": models,
                "tags": _tags(s.get("tags")),
                "end_commit": s.get("end_commit"),
            }
        )
        if s.get("subagents"):  # only when there are some: other sessions' items (and digests) stay as they were
            out[-1]["subagents"] = [
                {
                    "id": _t(a["id"]),
                    "requests": _n(a["requests"]),
                    **_tokens(a),
                    "cost_usd": _usd(a["cost_usd"]),
                    "unpriced_requests": _n(a["unpriced_requests"]),
                }
                for a in s["subagents"][:MAX_SUBAGENTS]
            ]
    return out


def changed(items: list[dict[str, Any]], pushed: dict[str, str]) -> list[tuple[dict[str, Any], str]]:
    """Items whose content differs from what the collector last acknowledged, with their new digests."""
    out = []
    for item in items:
        d = digest(item)
        if pushed.get(item["key"]) != d:
            out.append((item, d))
    return out
