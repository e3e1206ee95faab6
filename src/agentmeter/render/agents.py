"""`agentmeter agents`: the table of known agents and how each is metered."""

from __future__ import annotations

from . import emit_json, get_console, line


def agents_table(rows: list[dict], as_json: bool) -> None:
    if as_json:
        emit_json("agents", {"agents": rows})
        return
    from rich.table import Table

    t = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("agent", "installed", "metering", "verified", "how"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], "yes" if r["installed"] else "no", r["metering"], r["verified"], r["how"])
    get_console().print(t)
    line("live: metered and capped · byok: only with your own key · import: from its logs · none: not meterable")
