"""`agentmeter reconcile`: what the proxy metered against what the agents logged, per session and day.

The agents' logs are read again (nothing is written) and compared response by response with the ledger:
matched by response id (Anthropic `msg_…`, OpenAI `resp_…`), else by agent session, time (±5 minutes)
and identical tokens. Each difference gets the known causes that explain it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.models import Usage
from ..importers import SOURCES, log_files
from ..importers.base import ImportedResponse, read_lines
from ..importers.ingest import MATCH_WINDOW_MS, Ingest
from ..ledger import imports as store
from ..ledger.store import Ledger, local_day, usage_of

BUCKETS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")


@dataclass
class _Side:
    requests: int = 0
    usage: Usage = field(default_factory=Usage)

    def add(self, u: Usage) -> None:
        self.requests += 1
        self.usage = self.usage + u

    def as_dict(self) -> dict[str, int]:
        d = self.usage.as_dict()
        return {"requests": self.requests, **{b: d[b] for b in BUCKETS}}


@dataclass
class _Group:
    session: str
    agent: str
    day: str
    proxy: _Side = field(default_factory=_Side)
    log: _Side = field(default_factory=_Side)
    aborted: int = 0
    errors: int = 0
    outside: int = 0
    not_imported: int = 0
    not_in_log: int = 0
    under: int = 0
    under_tokens: int = 0
    over: int = 0
    asids: set[str] = field(default_factory=set)


def read_logs(
    agents: Iterable[str],
    since_ms: int | None,
    paths: dict[str, list[Path]] | None = None,
) -> tuple[dict[str, ImportedResponse], list[tuple[str, str]], int]:
    """Every response the agents logged since `since_ms`: the largest copy per key, replays dropped."""
    found: dict[str, ImportedResponse] = {}
    unreadable: list[tuple[str, str]] = []
    files_read = 0
    for agent in agents:
        files, missing = log_files(agent, (paths or {}).get(agent))
        unreadable.extend(missing)
        for path in files:
            try:
                if since_ms is not None and path.stat().st_mtime * 1000 < since_ms:
                    continue
                parser = SOURCES[agent].parser(path)
                for _, line in read_lines(path):
                    try:
                        rows = parser.feed(line)
                    except ValueError:
                        continue
                    for r in rows:
                        cur = found.get(r.import_key)
                        if cur is None or r.usage.total_tokens > cur.usage.total_tokens:
                            found[r.import_key] = r
                files_read += 1
            except OSError as exc:
                unreadable.append((str(path), exc.strerror or str(exc)))
    for key in Ingest._batch_replays(found.values()):
        del found[key]
    if since_ms is not None:
        found = {k: r for k, r in found.items() if r.started_at_ms >= since_ms}
    return found, unreadable, files_read


def reconcile(
    ledger: Ledger, *, since_ms: int | None, session: str | None = None, paths: dict[str, list[Path]] | None = None
) -> dict[str, Any]:
    logged, unreadable, files_read = read_logs(("claude", "codex"), since_ms, paths)
    rows = store.metered_rows(ledger, since_ms)
    asid_session = {asid: v["id"] for asid, v in store.agent_sessions(ledger).items()}
    by_response = {r["response_id"]: r for r in rows if r["response_id"]}
    groups: dict[tuple[str, str], _Group] = {}

    def group(sid: str, agent: str, ms: int) -> _Group:
        key = (sid, local_day(ms, ledger.tz))
        if key not in groups:
            groups[key] = _Group(sid, agent, key[1])
        return groups[key]

    proxy_rows = [r for r in rows if r["source"] == "proxy"]
    seen_proxy: set[str] = set()
    loose = defaultdict(list)  # agent session → proxy rows without a response id, for the fallback match
    for r in proxy_rows:
        if not r["response_id"] and r["agent_session_id"]:
            loose[r["agent_session_id"]].append(r)
    for resp in logged.values():
        row = by_response.get(resp.response_id or "") or _loose_match(loose, resp, seen_proxy)
        sid = (
            (row and row["session_id"]) or asid_session.get(resp.agent_session_id or "") or resp.agent_session_id or "?"
        )
        g = group(sid, resp.agent, resp.started_at_ms)
        g.log.add(resp.usage)
        g.asids.add(resp.agent_session_id or "")
        if row is None:
            g.outside += 1
            g.not_imported += 1
        elif row["source"] != "proxy":
            g.outside += 1
        else:
            seen_proxy.add(row["request_id"])
            proxy = usage_of(row)
            if row["status"] == "partial":
                pass  # the proxy's figure is an estimate: explained as an aborted stream
            elif resp.usage.total_tokens < proxy.total_tokens:
                g.under += 1
                g.under_tokens += proxy.total_tokens - resp.usage.total_tokens
            elif resp.usage.total_tokens > proxy.total_tokens:
                g.over += 1
    for r in proxy_rows:
        g = group(r["session_id"] or r["agent_session_id"] or "?", r["agent"], r["started_at"])
        g.proxy.add(usage_of(r))
        g.asids.add(r["agent_session_id"] or "")
        if r["status"] == "partial":
            g.aborted += 1
        elif r["status"] == "error":
            g.errors += 1
        elif r["request_id"] not in seen_proxy:
            g.not_in_log += 1
    out = [_view(g) for _, g in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
    if session:
        out = [g for g in out if g["session"].startswith(session) or session in g["agent_session_ids"]]
    totals = {side: {b: sum(g[side][b] for g in out) for b in ("requests", *BUCKETS)} for side in ("proxy", "log")}
    totals["difference"] = {b: totals["log"][b] - totals["proxy"][b] for b in ("requests", *BUCKETS)}
    return {
        "groups": out,
        "totals": totals,
        "files_read": files_read,
        "unreadable": [{"path": p, "reason": why} for p, why in unreadable],
    }


def _loose_match(loose: dict[str, list[dict]], resp: ImportedResponse, taken: set[str]) -> dict | None:
    for row in loose.get(resp.agent_session_id or "", []):
        if (
            row["request_id"] not in taken
            and abs(row["started_at"] - resp.started_at_ms) <= MATCH_WINDOW_MS
            and usage_of(row).total_tokens == resp.usage.total_tokens
        ):
            return row
    return None


def _view(g: _Group) -> dict[str, Any]:
    proxy, log = g.proxy.as_dict(), g.log.as_dict()
    return {
        "session": g.session,
        "agent": g.agent,
        "day": g.day,
        "agent_session_ids": sorted(a for a in g.asids if a),
        "proxy": proxy,
        "log": log,
        "difference": {k: log[k] - proxy[k] for k in proxy},
        "causes": _causes(g),
    }


def _causes(g: _Group) -> list[dict[str, Any]]:
    out = []

    def cause(name: str, count: int, text: str, **extra) -> None:
        if count:
            out.append({"cause": name, "count": count, "explanation": text, **extra})

    s = "s" if g.aborted != 1 else ""
    cause(
        "aborted_stream",
        g.aborted,
        f"{g.aborted} stream{s} cut short (Esc, a dropped connection): the provider billed what it generated; "
        "the proxy counted an estimate of the output, the agent logged what it had received",
    )
    cause("provider_error", g.errors, f"{g.errors} request(s) failed at the provider; the agent logs no usage for them")
    extra = f"; {g.not_imported} not imported yet (run: agentmeter import {g.agent})" if g.not_imported else ""
    cause(
        "outside_agentmeter",
        g.outside,
        f"{g.outside} response(s) made outside agentmeter: in the agent's log, never through the proxy{extra}",
        not_imported=g.not_imported,
    )
    cause(
        "log_undercount",
        g.under,
        f"the agent's log under-counts {g.under} response(s) by {g.under_tokens} tokens (it writes usage "
        "before the stream's final count)",
        tokens=g.under_tokens,
    )
    cause(
        "log_overcount",
        g.over,
        f"the agent's log reports more than the provider's final usage for {g.over} response(s)",
    )
    cause(
        "not_in_log",
        g.not_in_log,
        f"{g.not_in_log} request(s) metered by the proxy are not in the agent's log (background requests such as "
        "titles and summaries, or a log already cleaned up)",
    )
    return out
