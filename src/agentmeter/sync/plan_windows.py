"""Plan windows in the sync payload (issue 18 item 3): one item per (provider, account, window) this device
last read off the wire, so the collector can show a team's windows next to its dollars.

A ChatGPT account id is sent as a short hash: the collector needs to tell accounts apart, not to know them
(two devices on one account hash alike). The pace's run-out time is rounded to the minute, so a window whose
reading did not change is not re-sent on every sync only because the forecast moved by seconds.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from .payload import item_key


def opaque_account(account: str) -> str:
    """`chatgpt:<id>` → `chatgpt:<12 hex>`; labels without an id (`claude.ai`, `api`, `chatgpt`) unchanged."""
    kind, sep, ident = account.partition(":")
    if not sep:
        return account
    return f"{kind}:{hashlib.sha256(('agentmeter-plan-account:' + ident).encode()).hexdigest()[:12]}"


def _epoch(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp()) if iso else None


def plan_items(plan: list[dict[str, Any]], device_id: str) -> list[dict[str, Any]]:
    """Items from the ledger's plan section (`ledger.plan.plan_section`, what `status --json` shows)."""
    out = []
    for e in plan:
        account = opaque_account(e["account"])
        runs_out = _epoch((e.get("pace") or {}).get("runs_out_at"))
        out.append(
            {
                "key": item_key(device_id, "plan_window", e["provider"], account, e["window"]),
                "provider": e["provider"],
                "account": account,
                "window": e["window"],
                "used_pct": round(float(e["used_pct"]), 3),
                "resets_at": _epoch(e.get("resets_at")),
                "status": e.get("status"),
                "seen_at": _epoch(e.get("seen_at")) or 0,
                "runs_out_at": None if runs_out is None else runs_out // 60 * 60,
            }
        )
    return out
