"""`agentmeter doctor`: one line per check, with its fix."""

from __future__ import annotations

from . import emit_json, line


def doctor(checks: list[dict], as_json: bool) -> None:
    if as_json:
        emit_json("doctor", {"ok": not any(c["status"] == "fail" for c in checks), "checks": checks})
        return
    marks = {"ok": "✓", "warn": "!", "fail": "✗", "info": "·"}
    for c in checks:
        line(f"{marks[c['status']]} {c['name']:<16} {c['detail']}")
        if c["fix"] and c["status"] != "ok":
            line(f"  {'':<16} {'to install' if c['status'] == 'info' else 'fix'}: {c['fix']}")
