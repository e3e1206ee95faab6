"""The live view's screen (`agentmeter top`): running sessions with their burn, today's and the month's
spend against the caps, each plan window with its pace. Readable at 80 columns; rich honours NO_COLOR."""

from __future__ import annotations

from typing import Any

from . import duration, usd
from .status import plan_lines

STAGE_STYLE = {"ok": "green", "alert": "yellow", "downgrade": "magenta", "blocked": "bold red"}


def screen(payload: dict[str, Any], width: int = 80):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list = [
        Text(f"agentmeter top · {payload['generated_at'][:19].replace('T', ' ')} · Ctrl-C to quit", style="bold")
    ]
    bar_w = max(10, min(24, width - 56))

    spend = Table(box=None, pad_edge=False, show_header=True, header_style="bold", expand=False)
    for col, just in (
        ("window", "left"),
        ("", "left"),
        ("spent", "right"),
        ("cap", "right"),
        ("used", "right"),
        ("stage", "left"),
    ):
        spend.add_column(col, justify=just, no_wrap=True, overflow="ellipsis")
    for w in payload["windows"]:
        if w["name"] not in ("day", "month"):
            continue
        cap = usd(w["cap_usd"]) if w["cap_usd"] is not None else "no cap"
        used = f"{w['used_pct']:.0f}%" if w["used_pct"] is not None else ""
        filled = round(min(w["used_pct"] or 0, 110) / 110 * bar_w)
        spend.add_row(
            "today" if w["name"] == "day" else "month",
            "█" * filled + "░" * (bar_w - filled),
            usd(w["spent_usd"]),
            cap,
            used,
            Text(w["stage"], style=STAGE_STYLE.get(w["stage"], "")),
        )
    parts += [Text(""), spend]

    plan = payload.get("plan") or []
    if plan:
        lines = plan_lines(plan[:6], width, colour=False)
        styled = [Text(lines[0], style="bold")]
        for k, ln in enumerate(lines[1:]):
            e = plan[k // 2]
            styled.append(Text(ln, style=STAGE_STYLE.get(e["stage"], "") if k % 2 == 0 else "dim"))
        parts += [Text(""), *styled]

    running = payload.get("running") or []
    rt = Table(box=None, pad_edge=False, header_style="bold")
    for col, just in (
        ("running session", "left"),
        ("agent", "left"),
        ("req", "right"),
        ("cost", "right"),
        ("burn/h", "right"),
        ("idle", "right"),
    ):
        rt.add_column(
            col, justify=just, no_wrap=True, overflow="ellipsis", max_width=24 if col.startswith("run") else None
        )
    for s in running:
        rt.add_row(
            f"{s['id']} {(s['repo'] or '').rsplit('/', 1)[-1]}"[:24],
            s["agent"],
            str(s["requests"]),
            usd(s["cost_usd"]),
            usd(s["burn_usd_per_h"]),
            duration(s["idle_s"]),
        )
    parts += [Text(""), rt if running else Text("no running sessions", style="dim")]
    return Group(*parts)


def run(view, *, poll_s: float = 1.0) -> int:
    """Full screen until Ctrl-C (or q on a terminal); the terminal is restored either way."""
    import time

    from rich.console import Console
    from rich.live import Live

    from ..commands.live import watch

    console = Console()
    try:
        if not console.is_terminal:  # piped (like `top -b`): each refresh is printed in turn

            def emit(payload: dict) -> None:
                console.print(screen(payload, console.width))
                console.file.flush()

            watch(view.build, emit, view.changed, time.sleep, time.monotonic, poll_s=poll_s)
            return 0
        with Live(console=console, screen=True, auto_refresh=False, transient=False) as live:

            def show(payload: dict) -> None:
                live.update(screen(payload, console.width), refresh=True)

            watch(view.build, show, view.changed, time.sleep, time.monotonic, poll_s=poll_s)
    except KeyboardInterrupt:
        pass
    return 0
