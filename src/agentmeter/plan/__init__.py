"""Subscription plan windows: the provider's own rolling 5-hour and weekly limits, as read off the wire.

`tracker` keeps the latest reading per account in memory for the brake; `shares` attributes each
window's movement to the sessions that caused it; `pace` forecasts when a window runs out. All pure:
readings and times come in, nothing here reads the clock or the disk.
"""

from __future__ import annotations

WINDOW_LABELS = {
    "five_hour": "5-hour",
    "seven_day": "weekly",
    "seven_day_opus": "weekly Opus",
    "seven_day_sonnet": "weekly Sonnet",
    "seven_day_overage_included": "weekly (overage included)",
    "overage": "overage",
}
CAP_KEYS = ("five_hour", "seven_day")  # the [budget.plan] keys


def label(window: str) -> str:
    limit, _, name = window.rpartition(":")
    text = WINDOW_LABELS.get(name, name.replace("_", " "))
    return f"{limit} {text}" if limit else text


def account_of(provider: str, subscription: bool, headers) -> str:
    """Which plan a request draws on, from the request alone (the brake must know before it is sent).
    ChatGPT logins name their account in `chatgpt-account-id` (an id, not a secret). Anthropic requests
    carry no account id; a Claude login is `claude.ai`, API-key traffic `api`."""
    if provider == "openai":
        acct = headers.get("chatgpt-account-id") or headers.get("ChatGPT-Account-Id")
        return f"chatgpt:{acct[:64]}" if acct else ("chatgpt" if subscription else "api")
    return "claude.ai" if subscription else "api"
