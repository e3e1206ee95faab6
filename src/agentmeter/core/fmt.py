"""Money and token counts for people, one way everywhere (terminal, HTML report, collector dashboard); JSON and
CSV carry the exact values."""

from __future__ import annotations


def usd(value: float | None, *, unpriced: bool = False) -> str:
    """Money for people: $0.0012, $1.23, $1,234 (JSON and CSV carry the exact value)."""
    if value is None:
        return "—"
    if value == 0:
        return "$0.00" + ("*" if unpriced else "")
    text = f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}" if abs(value) < 1000 else f"${value:,.0f}"
    return text + ("*" if unpriced else "")


def tokens(n: int | None) -> str:
    n = int(n or 0)
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)
