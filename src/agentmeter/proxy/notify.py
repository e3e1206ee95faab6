"""Alerts: a desktop notification where the desktop offers one, and a webhook (Slack-compatible JSON).

Each (window, threshold) is sent once: the ledger's `alerts` table remembers, across restarts.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import shutil

log = logging.getLogger("agentmeter.proxy.notify")


def alert_text(window: str, threshold: float, spent_usd: float, cap_usd: float | None, stage: str) -> str:
    label = {"day": "Daily", "week": "Weekly", "month": "Monthly", "session": "Session"}.get(window, window)
    cap = f" of ${cap_usd:,.2f}" if cap_usd else ""
    what = {
        "alert": "heads-up",
        "downgrade": "easy turns now use a cheaper model",
        "blocked": "new requests are refused",
    }.get(stage, "")
    return f"{label} budget at {threshold * 100:.0f}%: ${spent_usd:,.2f}{cap} spent" + (f" ({what})" if what else "")


def projection_text(p: dict) -> str:
    """The projection in a line's tail: where the window is heading by its end."""
    return f"; projected ${p['p50']:,.2f} (P90 ${p['p90']:,.2f}) by {p['period_end']}"


async def desktop(title: str, text: str) -> bool:
    """notify-send on Linux, osascript on macOS; quietly nothing where neither exists."""
    if platform.system() == "Darwin" and shutil.which("osascript"):
        cmd = ["osascript", "-e", f'display notification "{text.replace(chr(34), chr(39))}" with title "{title}"']
    elif shutil.which("notify-send"):
        cmd = ["notify-send", "--app-name=agentmeter", title, text]
    else:
        return False
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        return await asyncio.wait_for(proc.wait(), 5) == 0
    except (TimeoutError, OSError):
        return False


async def webhook(http, url: str, payload: dict) -> bool:
    import aiohttp

    try:
        async with http.post(url, json=payload, timeout=aiohttp.ClientTimeout(total=10)) as r:
            return 200 <= r.status < 300
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning("webhook failed: %s", type(exc).__name__)
        return False
