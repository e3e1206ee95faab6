"""Schema validation of what clients send. Every error names the field, so a 4xx answer says what to fix.

Only known fields are kept: anything else a client sends is dropped here and never reaches the disk.

One bad item never blocks the rest (issue 14, item 11): a push whose envelope is wrong is refused whole
(422), but an item with a wrong field is skipped and named in the answer's `rejected` list while the others
are stored, and a text field over MAX_TEXT characters (a 260-character git branch, a model name an upstream
echoed back) is cut to MAX_TEXT rather than refused. Every count is bounded (MAX_ITEM_COUNT), so no sum of
pushed numbers can overflow. Team and cost centre are not read from a push at all: they belong to the token.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..core.bounds import MAX_PUSH_COUNT, MAX_PUSH_TEXT, MAX_PUSH_USD, clip_text
from ..ledger.schema import TOKEN_COLUMNS
from ..pricing.focus import TOKEN_TYPES as FOCUS_TOKEN_TYPES

PUSH_SCHEMA = "agentmeter.push/1"
MAX_ITEMS = 5000
MAX_TEXT = MAX_PUSH_TEXT
MAX_ITEM_COUNT = MAX_PUSH_COUNT  # see core/bounds.py: no sum of pushed numbers can overflow
MAX_ITEM_USD = MAX_PUSH_USD
MAX_TIME_MS = 2**53  # Unix milliseconds: any real date
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
MAX_TAGS = 20
_DEVICE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# The token types of a rollup's `cost_by_type` (pricing.focus: 1-hour cache writes and web searches since
# issue 20; older clients send the first four, with those folded in).
TOKEN_TYPES = FOCUS_TOKEN_TYPES
CAP_FIELDS = ("daily_usd", "weekly_usd", "monthly_usd", "daily_tokens", "weekly_tokens", "monthly_tokens")


class Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _obj(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(field, "must be a JSON object")
    return value


def _text(obj: dict, name: str, where: str, *, required: bool = True, empty: bool = True) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise Invalid(f"{where}{name}", "is required (a string)")
        return None
    if not isinstance(value, str) or (not empty and not value):
        raise Invalid(f"{where}{name}", f"must be a {'non-empty ' if not empty else ''}string")
    return clip(value)


def clip(value: str) -> str:
    """At most MAX_TEXT characters: a long branch or model name is shortened, never the reason to refuse."""
    return clip_text(value) or ""


def _count(obj: dict, name: str, where: str, *, required: bool = True, ceiling: int = MAX_ITEM_COUNT) -> int:
    value = obj.get(name, None if required else 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > ceiling:
        raise Invalid(f"{where}{name}", f"must be a whole number from 0 to {ceiling}")
    return value


def _money(value: Any, field: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or value > MAX_ITEM_USD
    ):
        raise Invalid(field, f"must be a number from 0 to {MAX_ITEM_USD:.0f} (USD)")
    return float(value)


def _day(obj: dict, where: str) -> str:
    value = obj.get("day")
    if not isinstance(value, str) or not _DAY.match(value):
        raise Invalid(f"{where}day", "must be a date YYYY-MM-DD")
    return value


def _common(item: dict, where: str) -> dict[str, Any]:
    key = item.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise Invalid(f"{where}key", "must be 64 lowercase hex characters (sha256)")
    out: dict[str, Any] = {"key": key, "day": _day(item, where), "requests": _count(item, "requests", where)}
    for c in TOKEN_COLUMNS:
        out[c] = _count(item, c, where, required=False)
    out["cost_usd"] = _money(item.get("cost_usd"), f"{where}cost_usd")
    out["unpriced_requests"] = _count(item, "unpriced_requests", where, required=False)
    out["agent"] = _text(item, "agent", where)
    return out


def rollup(item: Any, where: str) -> dict[str, Any]:
    item = _obj(item, where.rstrip("."))
    out = _common(item, where)
    out["provider"] = _text(item, "provider", where, empty=False)
    out["model"] = _text(item, "model", where)
    out["repo"] = _text(item, "repo", where)
    sub = item.get("subscription")
    if not isinstance(sub, bool):
        raise Invalid(f"{where}subscription", "must be true or false")
    out["subscription"] = sub
    out["cost_by_type"] = _split(item.get("cost_by_type", {}), f"{where}cost_by_type")
    out["tag_split"] = _tag_split(item.get("tag_split", []), f"{where}tag_split", out)
    return out


def _split(value: Any, field: str) -> dict[str, float]:
    if not isinstance(value, dict) or set(value) - set(TOKEN_TYPES):
        raise Invalid(field, f"must be an object with keys among {', '.join(TOKEN_TYPES)}")
    return {k: _money(v, f"{field}.{k}") for k, v in value.items()}


MAX_TAG_PARTS = 20


def _sums(item: dict[str, Any], where: str) -> dict[str, Any]:
    """The sums a part of a row carries (a tag set's share, a sub-agent's): requests, tokens, cost, unpriced."""
    out: dict[str, Any] = {"requests": _count(item, "requests", where)}
    for c in TOKEN_COLUMNS:
        out[c] = _count(item, c, where, required=False)
    out["cost_usd"] = _money(item.get("cost_usd"), f"{where}cost_usd")
    out["unpriced_requests"] = _count(item, "unpriced_requests", where, required=False)
    return out


def _tag_split(value: Any, field: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    """A rollup's tagged share per set of chargeback tags (issue 20 item 7, for the FOCUS export): at most
    MAX_TAG_PARTS, each with tags, and together no more than the rollup (requests, tokens, cost)."""
    if not isinstance(value, list):
        raise Invalid(field, "must be a list of tagged shares")
    if len(value) > MAX_TAG_PARTS:
        raise Invalid(field, f"at most {MAX_TAG_PARTS} tag sets per rollup")
    out = []
    for i, p in enumerate(value):
        where = f"{field}[{i}]."
        p = _obj(p, where.rstrip("."))
        tags = _tags(p.get("tags"), f"{where}tags")
        if not tags:
            raise Invalid(f"{where}tags", "must name at least one tag")
        part: dict[str, Any] = {"tags": tags, **_sums(p, where)}
        part["cost_by_type"] = _split(p.get("cost_by_type", {}), f"{where}cost_by_type")
        out.append(part)
    for c in ("requests", *TOKEN_COLUMNS):
        if sum(p[c] for p in out) > row[c]:
            raise Invalid(field, f"the tagged shares have more {c} than the rollup")
    if sum(p["cost_usd"] for p in out) > row["cost_usd"] + 1e-6:
        raise Invalid(field, "the tagged shares cost more than the rollup")
    return out


def session(item: Any, where: str) -> dict[str, Any]:
    item = _obj(item, where.rstrip("."))
    out = _common(item, where)
    out["session_id"] = _text(item, "session_id", where, empty=False)
    out["repo"] = _text(item, "repo", where, required=False)
    out["branch"] = _text(item, "branch", where, required=False)
    out["started_at"] = _count(item, "started_at", where, ceiling=MAX_TIME_MS)
    ended = item.get("ended_at")
    out["ended_at"] = None if ended is None else _count(item, "ended_at", where, ceiling=MAX_TIME_MS)
    models = item.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise Invalid(f"{where}models", "must be a list of model names")
    out["models"] = [clip(m) for m in models[:50]]
    out["tags"] = _tags(item.get("tags", {}), f"{where}tags")
    commit = item.get("end_commit")
    if commit is not None and not (isinstance(commit, str) and _COMMIT.match(commit)):
        raise Invalid(f"{where}end_commit", "must be a git commit id (40 or 64 lowercase hex characters)")
    out["end_commit"] = commit
    out["subagents"] = _subagents(item.get("subagents", []), f"{where}subagents", out)
    return out


MAX_SUBAGENTS = 50


def _subagents(value: Any, field: str, session: dict[str, Any]) -> list[dict[str, Any]]:
    """A session's sub-agents' sums (issue 20 item 7): at most MAX_SUBAGENTS, distinct ids, and together no
    more than the session itself (requests and cost)."""
    if not isinstance(value, list):
        raise Invalid(field, "must be a list of sub-agent sums")
    if len(value) > MAX_SUBAGENTS:
        raise Invalid(field, f"at most {MAX_SUBAGENTS} sub-agents per session")
    out = []
    for i, a in enumerate(value):
        where = f"{field}[{i}]."
        a = _obj(a, where.rstrip("."))
        out.append({"id": _text(a, "id", where, empty=False), **_sums(a, where)})
    if len({a["id"] for a in out}) != len(out):
        raise Invalid(field, "each sub-agent id once")
    if sum(a["requests"] for a in out) > session["requests"]:
        raise Invalid(field, "sub-agents cannot have more requests than their session")
    if sum(a["cost_usd"] for a in out) > session["cost_usd"] + 1e-6:
        raise Invalid(field, "sub-agents cannot cost more than their session")
    return out


def _tags(value: Any, field: str) -> dict[str, str]:
    """run --tag K=V labels: at most MAX_TAGS, keys and values as strings (cut to MAX_TEXT)."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise Invalid(field, "must be an object of tag names to string values")
    if len(value) > MAX_TAGS:
        raise Invalid(field, f"at most {MAX_TAGS} tags per session")
    return {clip(k): clip(v) for k, v in value.items()}


def push(body: Any) -> dict[str, Any]:
    """The push's envelope, checked whole (Invalid); its items, each checked on its own: the bad ones are
    left out and listed in `rejected` ({item, key, field, message})."""
    body = _obj(body, "body")
    if body.get("schema") != PUSH_SCHEMA:
        raise Invalid("schema", f"must be {PUSH_SCHEMA!r}")
    device = body.get("device_id")
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise Invalid("device_id", "must be 8 to 64 characters of [A-Za-z0-9_-]")
    lists = {}
    for name in ("rollups", "sessions", "deleted", "plan_windows"):
        value = body.get(name, [])
        if not isinstance(value, list):
            raise Invalid(name, "must be a list")
        lists[name] = value
    if sum(len(v) for v in lists.values()) > MAX_ITEMS:
        raise Invalid("items", f"too many items in one push (at most {MAX_ITEMS}); send them in batches")
    rejected: list[dict[str, Any]] = []
    deleted = []
    for i, key in enumerate(lists["deleted"]):
        if isinstance(key, str) and _KEY.match(key):
            deleted.append(key)
        else:
            rejected.append(
                {
                    "item": f"deleted[{i}]",
                    "key": None,
                    "field": f"deleted[{i}]",
                    "message": "must be 64 lowercase hex characters (sha256)",
                }
            )
    out: dict[str, Any] = {"device_id": device, "deleted": deleted, "rejected": rejected}
    for name, check in (("rollups", rollup), ("sessions", session), ("plan_windows", plan_window)):
        good = []
        for i, item in enumerate(lists[name]):
            try:
                good.append(check(item, f"{name}[{i}]."))
            except Invalid as exc:
                key = item.get("key") if isinstance(item, dict) and isinstance(item.get("key"), str) else None
                rejected.append(
                    {
                        "item": f"{name}[{i}]",
                        "key": key if key and _KEY.match(key) else None,
                        "field": exc.field,
                        "message": exc.message,
                    }
                )
        out[name] = good
    return out


def _epoch_s(obj: dict, name: str, where: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_TIME_MS // 1000:
        raise Invalid(f"{where}{name}", "must be unix seconds or null")
    return value


def plan_window(item: Any, where: str) -> dict[str, Any]:
    """One subscription plan window as a client last saw it (issue 18). The account is an opaque label
    (`claude.ai`, `api`, `chatgpt:<hash>`); a client never sends a ChatGPT account id in the clear."""
    item = _obj(item, where.rstrip("."))
    key = item.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise Invalid(f"{where}key", "must be 64 lowercase hex characters (sha256)")
    used = item.get("used_pct")
    if isinstance(used, bool) or not isinstance(used, int | float) or not math.isfinite(used) or not 0 <= used <= 1000:
        raise Invalid(f"{where}used_pct", "must be a number from 0 to 1000 (percent)")
    out: dict[str, Any] = {"key": key, "used_pct": float(used)}
    for name in ("provider", "account", "window"):
        out[name] = _text(item, name, where, empty=False)
    out["status"] = _text(item, "status", where, required=False)
    for name in ("resets_at", "runs_out_at"):
        out[name] = _epoch_s(item, name, where)
    seen = _epoch_s(item, "seen_at", where)
    if seen is None:
        raise Invalid(f"{where}seen_at", "is required (unix seconds)")
    out["seen_at"] = seen
    return out


def caps(body: Any) -> dict[str, Any]:
    body = _obj(body, "body")
    scope = body.get("scope")
    if scope not in ("team", "developer"):
        raise Invalid("scope", "must be 'team' or 'developer'")
    name = _text(body, "name", "", empty=False)
    out: dict[str, Any] = {"scope": scope, "name": name}
    for f in CAP_FIELDS:
        value = body.get(f)
        if value is None:
            out[f] = None
        elif f.endswith("_tokens"):
            out[f] = _count(body, f, "")
        else:
            out[f] = _money(value, f)
    allow = body.get("allow_snooze", False)
    if not isinstance(allow, bool):
        raise Invalid("allow_snooze", "must be true or false")
    out["allow_snooze"] = allow
    return out
