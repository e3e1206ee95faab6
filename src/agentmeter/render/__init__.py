"""The printers' shared parts: the JSON envelope, the console, tables that fit the terminal, the one colour
table, and money/token/time formatters. Each view has its own module beside this one (render/status.py …);
render/ is the only package that prints: rich tables for people, versioned JSON envelopes for scripts.

Data goes to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from ..core.clock import ms_to_iso
from ..core.fmt import tokens as tokens  # re-exported: render.tokens, render.usd
from ..core.fmt import usd as usd

_SCHEMA_VERSION = 1


def envelope(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    return tidy({"schema": f"agentmeter.{name}/{_SCHEMA_VERSION}", **payload})


def tidy(value: Any) -> Any:
    """Floats as the number they stand for: sums of costs carry binary noise (0.1 + 0.2 is
    0.30000000000000004); 10 decimals keep every real digit of a cost and drop the noise."""
    if isinstance(value, float):
        return round(value, 10)
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [tidy(v) for v in value]
    return value


def emit_json(name: str, payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(envelope(name, payload), indent=2, default=str) + "\n")


def get_console(stderr: bool = False):
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output has no terminal width: 200 unless COLUMNS says otherwise (rich reads it). Tables fit
    # themselves to the width (fit_table), so ids and money are never cut whatever it is.
    width = None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else 200
    return Console(
        stderr=stderr, highlight=False, soft_wrap=False, width=width, no_color=bool(os.environ.get("NO_COLOR")) or None
    )


@dataclass(frozen=True)
class Col:
    """A table column. `drop`: 0 never dropped (ids, money); otherwise higher numbers go first when the
    terminal is narrow. `shrink`: may be cut short with … (free text such as a repo or a model)."""

    name: str
    right: bool = False
    drop: int = 0
    shrink: bool = False


_GAP = 2  # rich's default padding between columns, with box=None and pad_edge=False
_MIN_SHRUNK = 8


def fit_table(cols: list[Col], rows: list[list[str]], width: int, footer: list[str] | None = None, **table_kw):
    """A rich Table that fits `width` without wrapping a row: the least useful columns are dropped first, then
    free-text columns are shortened; the essential columns (drop=0) are never cut."""
    from rich.table import Table

    natural = [
        max([len(c.name)] + [len(r[i]) for r in rows + ([footer] if footer else [])]) for i, c in enumerate(cols)
    ]
    keep = list(range(len(cols)))

    def total(idx: list[int], widths: list[int]) -> int:
        return sum(widths[i] for i in idx) + _GAP * (len(idx) - 1)

    widths = list(natural)
    empty = {i for i, c in enumerate(cols) if c.drop and rows and not any(r[i].strip() not in ("", "—") for r in rows)}
    for i in sorted((i for i, c in enumerate(cols) if c.drop), key=lambda i: (i not in empty, -cols[i].drop)):
        if total(keep, widths) <= width:
            break
        shrunk = list(widths)
        over = total(keep, shrunk) - width
        for j in keep:  # shortening free text is better than losing a column, down to a readable width
            if cols[j].shrink and over > 0:
                cut = min(over, shrunk[j] - max(_MIN_SHRUNK, len(cols[j].name)))
                if cut > 0:
                    shrunk[j] -= cut
                    over -= cut
        if over <= 0 and all(shrunk[j] >= natural[j] - natural[j] // 2 for j in keep if cols[j].shrink):
            widths = shrunk
            break
        keep.remove(i)
    # Nothing left to drop and still too wide: shorten free text below half its width (widest first, down to a
    # readable floor) rather than let rich squeeze the essential columns.
    over = total(keep, widths) - width
    floors = {j: max(_MIN_SHRUNK, len(cols[j].name)) for j in keep if cols[j].shrink}
    while over > 0:
        roomy = [j for j in floors if widths[j] > floors[j]]
        if not roomy:
            break
        j = max(roomy, key=lambda j: widths[j] - floors[j])
        widths[j] -= 1
        over -= 1
    t = Table(box=None, pad_edge=False, header_style="bold", show_footer=bool(footer), **table_kw)
    for i in keep:
        c = cols[i]
        t.add_column(
            c.name,
            justify="right" if c.right else "left",
            no_wrap=True,
            overflow="ellipsis" if c.shrink else "fold",
            max_width=widths[i] if c.shrink else None,
            width=None if c.shrink else natural[i],
            footer=footer[i] if footer else "",
        )
    for r in rows:
        t.add_row(*(r[i] for i in keep))
    return t


def local_time(iso_text: str | None, seconds: bool = False) -> str:
    """The one time format for people: local time with its zone (JSON keeps ISO 8601 UTC)."""
    if not iso_text:
        return "—"
    from datetime import datetime

    try:
        at = datetime.fromisoformat(iso_text.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso_text
    return at.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def error(message: str, hint: str | None = None) -> None:
    sys.stderr.write(f"agentmeter: {message}\n")
    if hint:
        sys.stderr.write(f"  hint: {hint}\n")


def info(message: str) -> None:
    sys.stderr.write(message + "\n")


def line(text: str) -> None:
    sys.stdout.write(text + "\n")


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def iso(ms: int | None) -> str | None:
    return ms_to_iso(ms)


_COLOURS = {"ok": "32", "alert": "33", "downgrade": "35", "blocked": "31"}


def colour_wanted(stream=None) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    import os

    return bool((stream or sys.stdout).isatty()) and not os.environ.get("NO_COLOR")


def paint(text: str, stage: str, on: bool) -> str:
    return f"\x1b[{_COLOURS.get(stage, '0')}m{text}\x1b[0m" if on else text


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    m = max(0, int(seconds // 60))
    if m >= 48 * 60:
        return f"{m // 1440}d{(m % 1440) // 60:02d}h"
    return f"{m // 60}h{m % 60:02d}m"
