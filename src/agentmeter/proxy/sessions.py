"""Sessions: opened by the CLI over the control API, found by their token on every request, ended by `run`.

A session's token (192 random bits) is the only way into the proxy; only its SHA-256 is kept, in memory and
in the ledger. The real provider keys a key-mode session swaps in live in KeyRing, re-read on every new
session so `agentmeter keys set` needs no daemon restart.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any

from ..core.clock import Clock
from ..core.models import Session
from ..ledger import Ledger, LedgerWriter

PROVIDERS = ("anthropic", "openai", "gemini")
DRAIN_S = 2.0

KeySource = Callable[[], dict[str, str | None]]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyRing:
    """The real provider keys for key mode. Never logged, never in a row, never in an error message."""

    def __init__(
        self,
        keys: dict[str, str | None] | None = None,
        source: KeySource | None = None,
        stamp: Callable[[], object] | None = None,
    ) -> None:
        self._keys = dict(keys or {})
        self._source = source
        self._stamp = stamp
        self._seen: object = stamp() if stamp is not None else None
        self._behind: asyncio.Future | None = None
        self._reads = 0
        if source is not None:
            # A restarted daemon serves existing key-mode sessions at once, not after the next new session.
            self._keys = source()

    def get(self, provider: str) -> str | None:
        return self._keys.get(provider)

    async def refresh(self) -> None:
        """Before a new session. Without a stamp, or when it moved (`keys set`/`keys delete` ran), the keys are
        read first; with it unchanged they are re-read behind the session (reading may start a child process,
        a few hundred ms, on a Linux desktop), so a key changed by another tool is in force a moment later."""
        if self._source is None:
            return
        loop = asyncio.get_running_loop()
        now = self._stamp() if self._stamp is not None else None
        if self._stamp is None or now != self._seen:
            self._seen = now
            self._reads += 1  # a read behind that started before this one must not land after it
            self._keys = await loop.run_in_executor(None, self._source)
        elif self._behind is None:
            self._behind = loop.run_in_executor(None, self._source)
            self._behind.add_done_callback(functools.partial(self._read_behind, reads=self._reads))

    def _read_behind(self, fut: asyncio.Future, *, reads: int) -> None:
        self._behind = None
        if reads == self._reads and not fut.cancelled() and fut.exception() is None:
            self._keys = fut.result()

    def providers(self) -> list[str]:
        return [p for p in PROVIDERS if self._keys.get(p)]


def session_from_row(row: dict[str, Any]) -> Session:
    """A sessions row (ledger) as the typed Session the proxy hands around."""
    return Session(
        id=row["id"],
        agent=row.get("agent") or "other",
        started_at_ms=int(row.get("started_at") or 0),
        developer=row.get("developer"),
        team=row.get("team"),
        cost_center=row.get("cost_center"),
        repo=row.get("repo"),
        branch=row.get("branch"),
        cwd=row.get("cwd"),
        budget_usd=row.get("budget_usd"),
        tags=_tags(row.get("tags")),
        ended_at_ms=row.get("ended_at"),
        exit_code=row.get("exit_code"),
        key_mode=tuple(k for k in (row.get("key_mode") or "").split(",") if k),
        token_hash=row["token_hash"],
        vkey_hash=row.get("vkey_hash"),
        agent_session_id=row.get("agent_session_id"),
    )


def _tags(raw: object) -> tuple[tuple[str, str], ...]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw else {}
        except ValueError:
            return ()
    if not isinstance(raw, dict):
        return ()
    return tuple((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in raw.items() if v is not None)


class Sessions:
    """The open sessions, cached by token hash in front of the ledger (a restarted daemon finds them there)."""

    def __init__(self, reader: Ledger, writer: LedgerWriter, clock: Clock, keys: KeyRing) -> None:
        self._reader = reader
        self._writer = writer
        self._clock = clock
        self._keys = keys
        self._by_hash: dict[str, Session] = {}
        self._noted_agent_sessions: set[str] = set()
        # Requests being relayed, per session id: ending a session waits briefly for them (drain).
        self._inflight: dict[str, int] = {}

    def lookup(self, token: str) -> Session | None:
        h = token_hash(token)
        session = self._by_hash.get(h)
        if session is None:
            row = self._reader.session_by_token_hash(h)
            if row is not None:
                session = self._by_hash[h] = session_from_row(row)
        # The hash lookup already matched; this comparison keeps the check constant-time regardless.
        if session is not None and hmac.compare_digest(session.token_hash, h):
            # An ended session's token (the agent exited; `run` ended it) opens nothing any more: a token
            # leaked from an old environment is dead.
            return None if session.ended_at_ms else session
        return None

    def forget(self, session_id: str) -> None:
        for h, s in list(self._by_hash.items()):
            if s.id == session_id:
                del self._by_hash[h]

    async def open(self, spec: dict[str, Any]) -> dict[str, Any]:
        await self._keys.refresh()
        token = secrets.token_urlsafe(24)
        key_mode = self._keys.providers()
        vkey = "amk_" + secrets.token_urlsafe(24) if key_mode else None
        session_id = spec.get("id") or secrets.token_hex(6)
        row = {
            "id": session_id,
            "token_hash": token_hash(token),
            "vkey_hash": token_hash(vkey) if vkey else None,
            "key_mode": ",".join(key_mode),
            "agent": str(spec.get("agent") or "other"),
            "developer": spec.get("developer"),
            "team": spec.get("team"),
            "cost_center": spec.get("cost_center"),
            "repo": spec.get("repo"),
            "branch": spec.get("branch"),
            "cwd": spec.get("cwd"),
            "tags": spec.get("tags") or {},
            "budget_usd": spec.get("budget_usd"),
            "pid": spec.get("pid"),
            "started_at": self._clock.now_ms(),
        }
        # keep=True: with the disk failing, the session still opens (it is held in memory and written later).
        await asyncio.wrap_future(self._writer.submit(lambda lg: lg.create_session(row), keep=True))
        self._by_hash[token_hash(token)] = session_from_row(row)
        return {"session_id": session_id, "token": token, "virtual_key": vkey, "key_mode": key_mode}

    def note_agent_session(self, session: Session, agent_session_id: str | None) -> None:
        """The agent's own conversation id, recorded once per session (the first request that names it)."""
        if not agent_session_id or session.agent_session_id or session.id in self._noted_agent_sessions:
            return
        self._noted_agent_sessions.add(session.id)
        sid = session.id
        self._writer.submit(lambda lg: lg.note_agent_session(sid, agent_session_id))

    # -- requests in flight, for a clean end ----------------------------------------------------------------

    def relaying(self, session_id: str, delta: int) -> None:
        n = self._inflight.get(session_id, 0) + delta
        if n > 0:
            self._inflight[session_id] = n
        else:
            self._inflight.pop(session_id, None)

    async def drain(self, session_id: str, timeout: float = DRAIN_S) -> None:
        """Wait (at most `timeout`) until the session has no request in flight. When an agent exits (Ctrl-C),
        its abandoned requests are recorded as the daemon sees the connections close, which can be just
        after `run` asks to end the session: the summary must count them."""
        deadline = self._clock.monotonic() + timeout
        while self._inflight.get(session_id) and self._clock.monotonic() < deadline:
            await asyncio.sleep(0.02)
