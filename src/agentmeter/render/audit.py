"""The audit trail as a table or a versioned JSON envelope (`agentmeter audit`, `agentmeter collector audit`)."""

from __future__ import annotations

import json
from typing import Any

from .. import render


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_value(x)}" for k, x in v.items()) or "-"
    if isinstance(v, str):
        return v
    return json.dumps(v)


def audit_log(schema: str, payload: dict[str, Any], as_json: bool) -> None:
    """`payload["entries"]`: {at, actor, action, target, old, new, detail}, oldest first."""
    if as_json:
        render.emit_json(schema, payload)
        return
    rows = payload["entries"]
    if not rows:
        render.line("no audit entries" + (" in this period" if payload.get("since") else ""))
        return
    col = render.Col
    cols = [
        col("when"),
        col("who"),
        col("what"),
        col("target", drop=1, shrink=True),
        col("old", drop=2, shrink=True),
        col("new", shrink=True),
        col("note", drop=3, shrink=True),
    ]
    body = [
        [
            render.local_time(r["at"], seconds=True),
            r["actor"],
            r["action"],
            r.get("target") or "",
            _value(r.get("old")),
            _value(r.get("new")),
            r.get("detail") or "",
        ]
        for r in rows
    ]
    console = render.get_console()
    console.print(render.fit_table(cols, body, console.width))


def audit_export(rows: list[dict[str, Any]], output: str | None, as_json: bool) -> None:
    """`collector export --format audit`: CSV (to a file written whole or not at all, or stdout), or the JSON
    envelope."""
    import sys

    from ..collector.audit import write_csv

    if as_json:
        text = json.dumps(render.envelope("collector_audit", {"entries": rows}), indent=2) + "\n"
        if not output:
            sys.stdout.write(text)
            return
    if output:
        from ..home.paths import atomic_open

        with atomic_open(output, "w", encoding="utf-8", newline="") as f:
            if as_json:
                f.write(text)
            else:
                write_csv(rows, f)
        render.info(f"wrote {len(rows)} audit entr{'y' if len(rows) == 1 else 'ies'} to {output}")
        return
    write_csv(rows, sys.stdout)
