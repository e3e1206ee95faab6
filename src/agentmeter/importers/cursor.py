"""Cursor's usage: the CSV a user exports from cursor.com/dashboard (Usage → Export), and the team Admin
API's usage events (`POST https://api.cursor.com/teams/filtered-usage-events`, Basic auth with an admin key).

Cursor sends model requests from its own servers, so none of this ever passed through the proxy. Rows are
attributed to the `agentmeter run cursor` session whose time window holds them (and whose developer
matches, for a team export), else to one imported session per developer and day.

Export columns seen in the wild (2025–2026), found by name so older and newer layouts both read:
`Date, [User,] [Cloud Agent ID, Automation ID,] Kind, Model, Max Mode, Input (w/ Cache Write),
Input (w/o Cache Write), Cache Read, Output Tokens, Total Tokens, Cost`. Tools disagree on whether
"Input (w/ Cache Write)" is the cache write alone or input plus it; `Total Tokens` decides per row.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.errors import AgentmeterError, UsageError
from ..core.models import Usage
from .base import ImportedResponse, parse_ts

SOURCE = "cursor-export"
API_URL = "https://api.cursor.com"
EXPECTED = (
    "Date",
    "Model",
    "Input (w/ Cache Write)",
    "Input (w/o Cache Write)",
    "Cache Read",
    "Output Tokens",
    "Total Tokens",
    "Cost",
)
_ALIASES = {
    "date": "date",
    "timestamp": "date",
    "time": "date",
    "user": "user",
    "email": "user",
    "useremail": "user",
    "kind": "kind",
    "model": "model",
    "inputwcachewrite": "in_with_cw",
    "inputwithcachewrite": "in_with_cw",
    "cachewrite": "cache_write",
    "inputwocachewrite": "in_without_cw",
    "inputwithoutcachewrite": "in_without_cw",
    "input": "in_without_cw",
    "inputtokens": "in_without_cw",
    "cacheread": "cache_read",
    "cachereadtokens": "cache_read",
    "outputtokens": "output",
    "output": "output",
    "totaltokens": "total",
    "cost": "cost",
    "cost$": "cost",
    "costusd": "cost",
}
# A row slack of this many minutes either side of a `run cursor` session still belongs to it.
SESSION_SLACK_MS = 5 * 60 * 1000


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9$]", "", name.strip().strip('"').lower().replace("w/o", "wo").replace("w/", "w"))


def _int(text: str | None) -> int:
    digits = re.sub(r"[^0-9.]", "", text or "")
    try:
        return int(float(digits)) if digits else 0
    except ValueError:
        return 0


def _cost(text: str | None) -> float | None:
    """`$0.12` → 0.12; `Included`, `Free`, `-` → None (priced as API-equivalent)."""
    t = (text or "").strip().replace(",", "")
    m = re.fullmatch(r"\$?\s*(-?\d+(?:\.\d+)?)", t)
    return float(m.group(1)) if m else None


def provider_of(model: str) -> str:
    m = model.lower()
    if m.startswith(("claude", "anthropic")) or "sonnet" in m or "opus" in m or "haiku" in m:
        return "anthropic"
    if m.startswith(("gpt", "o1", "o3", "o4", "codex", "openai")):
        return "openai"
    if m.startswith("gemini"):
        return "google"
    return "cursor"


def split_inputs(with_cw: int, without_cw: int, cache_read: int, output: int, total: int | None) -> tuple[int, int]:
    """(uncached input, cache write) from the two input columns."""
    if total and with_cw + cache_read + output == total and with_cw >= without_cw:
        return without_cw, with_cw - without_cw  # "w/ cache write" = input + write
    return without_cw, with_cw  # "w/ cache write" = the write alone (sums to Total Tokens with the rest)


class Keys:
    """Import keys for rows that carry no id: the row's own facts, plus how many identical rows came before
    it in the same export, so re-importing the same (or an overlapping) export adds nothing."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def key(self, ts: int, model: str, u: Usage) -> str:
        facts = f"{ts}|{model}|{u.input_tokens}|{u.cache_write_tokens}|{u.cache_read_tokens}|{u.output_tokens}"
        self.seen[facts] += 1
        return "cursor:" + hashlib.sha256(f"{facts}|{self.seen[facts]}".encode()).hexdigest()[:32]


def _response(
    keys: Keys, ts: int, model: str, u: Usage, cost: float | None, user: str | None, kind: str | None
) -> ImportedResponse:
    included = cost is None or (kind or "").lower().startswith(("included", "free"))
    return ImportedResponse(
        source=SOURCE,
        import_key=keys.key(ts, model, u),
        agent="cursor",
        provider=provider_of(model),
        api="other",
        path="/cursor/usage",
        model=model or None,
        started_at_ms=ts,
        usage=u,
        developer=user or None,
        cost_usd=cost,
        subscription=included,
        note=f"cursor: {kind}" if kind else None,
    )


def read_csv(path: Path) -> Iterator[ImportedResponse]:
    """Rows of one export, streamed. Raises UsageError when the header is not a Cursor export's."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        cols = {_ALIASES[_norm(h)]: i for i, h in enumerate(header or []) if _norm(h) in _ALIASES}
        missing = [n for n, k in (("Date", "date"), ("Model", "model"), ("Output Tokens", "output")) if k not in cols]
        if not ({"in_with_cw", "in_without_cw", "cache_write"} & set(cols)):
            missing.append("Input (w/o Cache Write)")
        if missing:
            raise UsageError(
                f"{path}: not a Cursor usage export (no {', '.join(missing)} column)",
                "export it from cursor.com/dashboard → Usage → Export CSV; expected columns: " + ", ".join(EXPECTED),
            )
        keys = Keys()
        for row in reader:

            def get(k: str, row=row) -> str | None:
                i = cols.get(k)
                return row[i] if i is not None and i < len(row) else None

            ts = parse_ts((get("date") or "").strip())
            if ts is None:
                continue
            out, cache_read = _int(get("output")), _int(get("cache_read"))
            if "cache_write" in cols:
                inp, write = _int(get("in_without_cw")), _int(get("cache_write"))
            else:
                total = _int(get("total")) if "total" in cols else None
                inp, write = split_inputs(_int(get("in_with_cw")), _int(get("in_without_cw")), cache_read, out, total)
            u = Usage(
                input_tokens=inp,
                cache_read_tokens=cache_read,
                cache_write_tokens=write,
                cache_write_5m_tokens=write,
                output_tokens=out,
            )
            cost = _cost(get("cost"))
            if not u.total_tokens and not cost:
                continue  # errored / not charged, nothing used
            yield _response(
                keys,
                ts,
                (get("model") or "").strip(),
                u,
                cost,
                (get("user") or "").strip(),
                (get("kind") or "").strip() or None,
            )


# -- the Admin API ----------------------------------------------------------------------------------------


def admin_key() -> str | None:
    return os.environ.get("AGENTMETER_CURSOR_ADMIN_KEY") or os.environ.get("CURSOR_ADMIN_API_KEY") or None


def fetch_events(
    key: str, since_ms: int, until_ms: int, base_url: str | None = None, page_size: int = 500
) -> Iterator[dict[str, Any]]:
    """Usage events from the team Admin API, page by page."""
    url = (base_url or os.environ.get("AGENTMETER_CURSOR_API_URL") or API_URL).rstrip("/")
    auth = base64.b64encode(f"{key}:".encode()).decode()
    page = 1
    while True:
        body = json.dumps({"startDate": since_ms, "endDate": until_ms, "page": page, "pageSize": page_size}).encode()
        req = urllib.request.Request(
            url + "/teams/filtered-usage-events",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                data = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise AgentmeterError(
                    f"the Cursor Admin API refused the key (HTTP {exc.code})",
                    "create an admin key at cursor.com/dashboard → Settings → Admin API keys "
                    "and set AGENTMETER_CURSOR_ADMIN_KEY",
                ) from None
            raise AgentmeterError(f"the Cursor Admin API answered HTTP {exc.code}", "try again later") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise AgentmeterError(
                f"could not read the Cursor Admin API at {url}: {exc}",
                "check the network, or import the CSV export instead",
            ) from None
        events = data.get("usageEvents") or []
        yield from events
        if not events or not (data.get("pagination") or {}).get("hasNextPage"):
            return
        page += 1


def from_events(events: Iterable[dict[str, Any]]) -> Iterator[ImportedResponse]:
    keys = Keys()
    for e in events:
        tu = e.get("tokenUsage")
        ts = parse_ts(e.get("timestamp"))
        if not isinstance(tu, dict) or ts is None:
            continue  # request-based billing carries no tokens
        n = {
            k: _int(str(tu.get(k) or 0)) for k in ("inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens")
        }
        u = Usage(
            input_tokens=n["inputTokens"],
            output_tokens=n["outputTokens"],
            cache_read_tokens=n["cacheReadTokens"],
            cache_write_tokens=n["cacheWriteTokens"],
            cache_write_5m_tokens=n["cacheWriteTokens"],
        )
        cents = tu.get("totalCents")
        cost = float(cents) / 100 if isinstance(cents, int | float) else None
        if not u.total_tokens and not cost:
            continue
        yield _response(
            keys, ts, str(e.get("model") or ""), u, cost, e.get("userEmail"), e.get("kindLabel") or e.get("kind")
        )


# -- attribution --------------------------------------------------------------------------------------------


def attribute(rows: Iterable[ImportedResponse], sessions: list[dict[str, Any]]) -> Iterator[ImportedResponse]:
    """Give each row the `run cursor` session whose window holds it, else a per-developer-and-day session."""
    from dataclasses import replace

    for r in rows:
        hit = next(
            (
                s
                for s in sessions
                if s["started_at"] - SESSION_SLACK_MS
                <= r.started_at_ms
                <= (s["ended_at"] or s["started_at"] + 86_400_000) + SESSION_SLACK_MS
                and (not r.developer or not s["developer"] or r.developer == s["developer"])
            ),
            None,
        )
        if hit:
            yield replace(r, session_id=hit["id"], repo=hit["repo"], branch=hit["branch"])
        else:
            day = datetime.fromtimestamp(r.started_at_ms / 1000, UTC).date().isoformat()
            yield replace(r, agent_session_id=f"cursor-export:{r.developer or 'me'}:{day}")
