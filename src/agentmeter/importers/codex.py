"""Codex rollouts: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl` and `$CODEX_HOME/archived_sessions/`.

Two shapes, both read (observed with Codex CLI 0.169.0, and older rollouts as other tools describe them):

* `token_usage_record` lines (0.169.0): one per model response, with `response_id` and that response's
  `usage`. The import key is the response id, so a record copied into another file is counted once.
* `event_msg` / `token_count` lines: `info.total_token_usage` is cumulative for the session and
  `info.last_token_usage` is the latest response. Per-response usage is the difference of consecutive
  totals (duplicate `token_count` lines then add nothing). Used only where no `token_usage_record`
  covers the response.

Forks start from their parent's history. In 0.169.0 a fork (`forked_from_id`, `history_base`) writes no
parent lines but its first cumulative total includes the parent's; older rollouts (and sub-agent threads)
copied the parent's lines after a second `session_meta`. Either way the inherited prefix is subtracted:
its totals advance the baseline and are never counted.

OpenAI semantics: cached (and cache-write) input is inside `input_tokens`; reasoning is inside output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.models import Usage
from ..pricing.tiers import normalize_tier
from .base import ImportedResponse, home, loads, parse_ts

SOURCE = "codex-log"
_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
)
_INTEREST = (b'"session_meta"', b'"turn_context"', b'"token_count"', b'"token_usage_record"', b'"task_started"')


def roots() -> list[Path]:
    base = Path(os.environ["CODEX_HOME"]).expanduser() if os.environ.get("CODEX_HOME") else home() / ".codex"
    return [base / "sessions", base / "archived_sessions"]


def _counts(d: Any) -> dict[str, int] | None:
    if not isinstance(d, dict):
        return None
    out = {}
    for f in _FIELDS:
        v = d.get(f)
        out[f] = int(v) if isinstance(v, int | float) and v > 0 else 0
    return out


def usage_of(c: dict[str, int]) -> Usage:
    cached, write, out = c["cached_input_tokens"], c["cache_write_input_tokens"], c["output_tokens"]
    return Usage(
        input_tokens=max(0, c["input_tokens"] - cached - write),
        cache_read_tokens=cached,
        cache_write_tokens=write,
        cache_write_5m_tokens=write,
        output_tokens=out,
        reasoning_tokens=min(out, c["reasoning_output_tokens"]),
    )


def _minus(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {f: a[f] - b[f] for f in _FIELDS}


class CodexRollout:
    """One rollout file, fed line by line."""

    source = SOURCE

    def __init__(self, path: Path | None = None) -> None:
        self.session_id: str | None = None
        self.meta_ms: int | None = None
        self.forked = False
        self.replaying = False  # inside a copied parent history
        self.cwd: str | None = None
        self.branch: str | None = None
        self.repo_url: str | None = None
        self.model: str | None = None
        self.service_tier: str | None = None  # turn_context's service_tier (Codex "fast" is priority)
        self.prev: dict[str, int] | None = None  # the last cumulative total seen
        self.running = 0  # own tokens so far, keys rows of rollouts without totals
        self.records_since_count = 0

    def feed(self, line: bytes) -> list[ImportedResponse]:
        if not any(m in line for m in _INTEREST):
            return []
        d = loads(line)
        kind, p = d.get("type"), d.get("payload")
        if not isinstance(p, dict):
            return []
        ts = parse_ts(d.get("timestamp"))
        if kind == "session_meta":
            self._meta(p, ts)
        elif kind == "turn_context":
            if isinstance(p.get("model"), str):
                self.model = p["model"]
            if "service_tier" in p:
                self.service_tier = p["service_tier"] if isinstance(p["service_tier"], str) else None
            self.cwd = p.get("cwd") or self.cwd
        elif kind == "event_msg" and p.get("type") == "task_started":
            self._task_started(p)
        elif kind == "token_usage_record":
            return self._record(p, ts)
        elif kind == "event_msg" and p.get("type") == "token_count":
            return self._token_count(p, ts)
        return []

    def _meta(self, p: dict, ts: int | None) -> None:
        sid = p.get("id") or p.get("session_id")
        if self.session_id is None:
            self.session_id = sid
            self.meta_ms = parse_ts(p.get("timestamp")) or ts
            spawn = ((p.get("source") or {}).get("subagent") or {}) if isinstance(p.get("source"), dict) else {}
            parent = (
                p.get("forked_from_id") or (spawn.get("thread_spawn") or {}).get("parent_thread_id")
                if isinstance(spawn, dict)
                else p.get("forked_from_id")
            )
            self.forked = bool(parent or p.get("history_base"))
            self.cwd = p.get("cwd") or self.cwd
            git = p.get("git") if isinstance(p.get("git"), dict) else {}
            self.branch = git.get("branch") or None
            self.repo_url = git.get("repository_url") or None
        elif sid and sid != self.session_id:
            # A second session_meta naming another thread: the parent's history follows.
            self.replaying = True
        elif sid == self.session_id:
            self.replaying = False

    def _task_started(self, p: dict) -> None:
        # A copied task keeps its original start time; the fork's own first task starts after the fork.
        started = parse_ts(p.get("started_at"))
        if self.replaying and started is not None and self.meta_ms is not None and started >= self.meta_ms - 1000:
            self.replaying = False

    def _row(self, key: str, c: dict[str, int], ts: int | None, **kw) -> ImportedResponse:
        return ImportedResponse(
            source=SOURCE,
            import_key=key,
            agent="codex",
            provider="openai",
            api="responses",
            path="/v1/responses",
            model=self.model,
            started_at_ms=ts or self.meta_ms or 0,
            usage=usage_of(c),
            cwd=self.cwd,
            branch=self.branch,
            repo=self.repo_url,
            **{
                "agent_session_id": self.session_id,
                "tier": normalize_tier("openai", service_tier=self.service_tier),
                **kw,
            },
        )

    def _record(self, p: dict, ts: int | None) -> list[ImportedResponse]:
        self.records_since_count += 1
        c, rid = _counts(p.get("usage")), p.get("response_id")
        if c is None or not isinstance(rid, str) or not any(c.values()):
            return []
        asid = p.get("session_id") or p.get("thread_id") or self.session_id
        thread = p.get("thread_id")
        extra = {}
        if isinstance(p.get("service_tier"), str):  # the record's own tier wins over the turn's setting
            extra["tier"] = normalize_tier("openai", service_tier=p["service_tier"])
        return [
            self._row(
                f"codex:{rid}",
                c,
                ts,
                response_id=rid,
                agent_session_id=asid,
                agent_id=thread if thread and thread != asid else None,
                **extra,
            )
        ]

    def _token_count(self, p: dict, ts: int | None) -> list[ImportedResponse]:
        info = p.get("info") if isinstance(p.get("info"), dict) else None
        if info is None:  # rate-limit-only updates
            return []
        total, last = _counts(info.get("total_token_usage")), _counts(info.get("last_token_usage"))
        if total is None and last is None:
            return []
        if self.prev is None:
            self.prev = self._baseline(total, last)
        if total is None:
            delta = last or {}
            self.prev = {f: self.prev[f] + delta[f] for f in _FIELDS}
        elif any(total[f] < self.prev[f] for f in _FIELDS):
            delta = last if last is not None else total  # the counter restarted
            self.prev = total
        else:
            delta = _minus(total, self.prev)
            self.prev = total
        covered, self.records_since_count = self.records_since_count > 0, 0
        if self.replaying or covered or not any(delta.values()):
            return []
        self.running += sum(delta[f] for f in ("input_tokens", "output_tokens"))
        position = total["input_tokens"] + total["output_tokens"] if total else self.running
        return [self._row(f"codex:{self.session_id}:{position}", delta, ts)]

    def _baseline(self, total: dict[str, int] | None, last: dict[str, int] | None) -> dict[str, int]:
        zero = dict.fromkeys(_FIELDS, 0)
        if total is None or self.replaying:
            return zero
        if last is not None:
            # Everything before this response: 0 for a fresh session, the parent's total for a fork.
            return {f: max(0, total[f] - last[f]) for f in _FIELDS}
        # A fork without `last_token_usage` cannot separate its first response from the parent's total:
        # under-count that one response rather than count the parent's history again.
        return total if self.forked else zero
