"""`agentmeter proxy status` and the `agentmeter env` exports."""

from __future__ import annotations

import shlex

from . import emit_json, line


def exports(env: dict[str, str], comment: str | None = None) -> None:
    if comment:
        line(f"# {comment}")
    for key, value in env.items():
        line(f"export {key}={shlex.quote(value)}")


def proxy_status(info: dict, as_json: bool) -> None:
    if as_json:
        emit_json("proxy_status", info)
        return
    if info["running"]:
        line(f"agentmeter proxy: running (pid {info['pid']}) at {info['url']}")
        for name, url in (info.get("upstreams") or {}).items():
            line(f"  upstream {name:<9} {url}")
    else:
        line("agentmeter proxy: not running. Start it with: agentmeter proxy start")
