"""From parsed responses to ledger rows, never twice.

Order of decisions for each response a log reports:

1. The largest copy per import key wins (streamed copies repeat with growing output), within a batch and
   against the ledger (a stored copy that later grew is replaced, its rollup unfolded first).
2. A response id the proxy already metered is matched, not added (Anthropic `msg_…`, OpenAI `resp_…`).
3. Without a usable id: a proxy row (or a row imported with its id) of the same agent session, within
   ±5 minutes, with identical token buckets, is the same response.
4. A Claude Code side-chain copy (or a copy without a request id) of a message already recorded under
   another request id is a replay, dropped.

Rows are written in batches, one short transaction each, so a running daemon is never blocked for long.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.models import RequestRecord, Usage
from ..ledger import imports as store
from ..ledger.store import Ledger, usage_of
from .base import ImportedResponse, LineParser, first_timestamp, read_lines

MATCH_WINDOW_MS = 5 * 60 * 1000
# Agents whose live traffic carries no session id of theirs (no header), so their proxy rows are found by
# agent, time and identical buckets instead.
UNLABELLED_AGENTS = frozenset({"gemini", "copilot"})
BATCH = 500


@dataclass
class ImportSummary:
    source: str
    dry_run: bool
    files_read: int = 0
    files_unchanged: int = 0
    bytes_read: int = 0
    responses: int = 0  # distinct responses the logs reported
    added: int = 0
    updated: int = 0  # a stored copy replaced by a larger one
    already_imported: int = 0
    matched_proxy: int = 0  # metered live by the proxy: not added
    replayed: int = 0  # side-chain / fork replays of a message already counted
    sessions_created: int = 0
    added_usage: Usage = field(default_factory=Usage)
    added_cost_usd: float = 0.0
    unpriced_models: set[str] = field(default_factory=set)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    malformed: list[tuple[str, int, int]] = field(default_factory=list)  # path, lines, first line number

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "files_read": self.files_read,
            "files_unchanged": self.files_unchanged,
            "bytes_read": self.bytes_read,
            "responses": self.responses,
            "added": self.added,
            "updated": self.updated,
            "already_imported": self.already_imported,
            "matched_proxy": self.matched_proxy,
            "replayed_dropped": self.replayed,
            "sessions_created": self.sessions_created,
            "added_tokens": {k: v for k, v in self.added_usage.as_dict().items() if k != "web_search_requests"},
            "added_cost_usd": round(self.added_cost_usd, 6),
            "unpriced_models": sorted(self.unpriced_models),
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
            "malformed": [{"path": p, "lines": n, "first_line": first} for p, n, first in self.malformed],
        }


def _size(u: Usage) -> tuple[int, int]:
    return u.total_tokens, u.output_tokens


def _repo(url: str | None) -> str | None:
    from ..home.attribution import normalise_remote

    return normalise_remote(url) if url else None


def _digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


class Ingest:
    """One import run into one ledger (read-only when `dry_run`)."""

    def __init__(
        self,
        ledger: Ledger,
        source: str,
        *,
        config=None,
        dry_run: bool = False,
        now_ms: int = 0,
        progress: Callable[[int], None] | None = None,
        batch: int = BATCH,
    ) -> None:
        self.ledger = ledger
        self.config = config
        self.dry_run = dry_run
        self.now_ms = now_ms
        self.progress = progress or (lambda n: None)
        self.batch = batch
        self.summary = ImportSummary(source=source, dry_run=dry_run)
        self.sessions = store.agent_sessions(ledger)  # agent session id → {id, repo, branch, imported}
        self.matchable = store.matchable_sessions(ledger)
        self.pending: dict[str, ImportedResponse] = {}
        self.done_files: list[tuple[str, int, int, int, int]] = []
        self.file_rows: dict[str, int] = defaultdict(int)
        self.taken: set[str] = set()
        self._where: dict[str, str] = {}  # import key → file, to credit rows to files
        self._attribution: dict[str, Any] = {}
        # Dry runs write nothing, so what earlier batches "would have stored" is remembered here.
        self._dry_keys: dict[str, tuple[Usage, float | None]] = {}
        self._dry_owners: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._dry_sessions: set[str] = set()
        self._flushed: set[str] = set()  # keys of the batch written last
        self._flushing: set[str] = set()

    # -- reading ------------------------------------------------------------------------------------

    def plan(self, files: list[Path], resumable: bool) -> list[tuple[Path, int, int, int]]:
        """(path, start offset, size, mtime_ns) of the files to read, originals before their forks."""
        states = store.file_states(self.ledger)
        todo = []
        for path in files:
            try:
                st = path.stat()
            except OSError as exc:
                self.summary.unreadable.append((str(path), exc.strerror or str(exc)))
                continue
            prev = states.get(str(path))
            if prev and prev["size"] == st.st_size and prev["mtime_ns"] == st.st_mtime_ns:
                self.summary.files_unchanged += 1
                continue
            offset = prev["offset"] if (resumable and prev and prev["offset"] <= st.st_size) else 0
            todo.append((path, offset, st.st_size, st.st_mtime_ns))
        todo.sort(key=lambda t: (first_timestamp(t[0]) or t[3] // 1_000_000, str(t[0])))
        return todo

    def read(self, todo: list[tuple[Path, int, int, int]], parser_for: Callable[[Path], LineParser]) -> None:
        for path, offset, _size, _mtime in todo:
            self.read_file(path, offset, parser_for(path))
        self.flush()

    def read_file(self, path: Path, offset: int, parser: LineParser) -> None:
        # Line numbers count from where this read started (the file's start unless it is a resumed read).
        bad, first_bad, pos = 0, 0, offset
        try:
            for n, (end, line) in enumerate(read_lines(path, offset), start=1):
                self.progress(end - pos)
                pos = end
                try:
                    found = parser.feed(line)
                except ValueError:
                    bad += 1
                    first_bad = first_bad or n
                    continue
                for r in found:
                    self.add(r, str(path))
        except OSError as exc:
            self.summary.unreadable.append((str(path), exc.strerror or str(exc)))
            return
        self.summary.files_read += 1
        self.summary.bytes_read += pos - offset
        if bad:
            self.summary.malformed.append((str(path), bad, first_bad))
        st = os.stat(path)
        # Read to the end: remember size and mtime so an unchanged file is skipped. Otherwise (a line still
        # being written, or the file grew meanwhile) the next import resumes at `pos`.
        whole = pos == st.st_size
        self.done_files.append(
            (str(path), self.summary.source, st.st_size if whole else pos, st.st_mtime_ns if whole else 0, pos)
        )

    def add(self, r: ImportedResponse, where: str = "") -> None:
        cur = self.pending.get(r.import_key)
        if cur is None:
            # A streamed message's copies sit together: one flushed with the previous batch is the same response.
            if r.import_key not in self._flushed:
                self.summary.responses += 1
            self.pending[r.import_key] = r
            self._where[r.import_key] = where
        elif _size(r.usage) > _size(cur.usage):
            self.pending[r.import_key] = r
        if len(self.pending) >= self.batch:
            self.flush()

    # -- deciding -------------------------------------------------------------------------------------

    def flush(self) -> None:
        items = list(self.pending.values())
        self.pending.clear()
        self._flushing = {r.import_key for r in items}
        keep = self._decide(items)
        if self.dry_run:
            self._dry_write(keep)
        else:
            # Pricing and session lookups happen before the write lock is taken: the daemon's writer waits on
            # it, and the proxy holds a response's terminal event until its row commits.
            prepared, sessions = self._prepare(keep)
            with store.transaction(self.ledger):
                self._write(prepared, sessions)
                for path, source, size, mtime_ns, offset in self.done_files:
                    store.save_file_state(
                        self.ledger, path, source, size, mtime_ns, offset, self.file_rows.pop(path, 0), self.now_ms
                    )
        self.done_files.clear()
        self._where = {k: v for k, v in self._where.items() if k in self.pending}
        self._flushed = self._flushing

    def _decide(self, items: list[ImportedResponse]) -> list[ImportedResponse]:
        replays = self._batch_replays(items)
        ids = {r.response_id for r in items if r.response_id}
        owners = store.response_owners(self.ledger, ids)
        for rid in ids & self._dry_owners.keys():
            owners.setdefault(rid, []).extend(self._dry_owners[rid])
        keep = []
        for r in items:
            own = owners.get(r.response_id or "", [])
            if any(src == "proxy" for src, _ in own):
                self.summary.matched_proxy += 1
                continue
            others = [k for _, k in own if k and k != r.import_key]
            if r.import_key in replays or (
                others and (r.sidechain or not r.has_request_id or any(k.endswith(":") for k in others))
            ):
                self.summary.replayed += 1
                continue
            if not own and r.agent_session_id in self.matchable:
                hit = store.same_response(
                    self.ledger,
                    r.agent_session_id,
                    r.started_at_ms,
                    r.usage,
                    MATCH_WINDOW_MS,
                    r.response_id,
                    self.taken,
                )
                if hit:
                    self.taken.add(hit[0])
                    if hit[1] == "proxy":
                        self.summary.matched_proxy += 1
                    else:
                        self.summary.already_imported += 1
                    continue
            if not own and r.agent in UNLABELLED_AGENTS:
                hit_id = store.same_unlabelled_response(
                    self.ledger, r.agent, r.started_at_ms, r.usage, MATCH_WINDOW_MS, self.taken
                )
                if hit_id:
                    self.taken.add(hit_id)
                    self.summary.matched_proxy += 1
                    continue
            keep.append(r)
        return keep

    @staticmethod
    def _batch_replays(items: Iterable[ImportedResponse]) -> set[str]:
        """Keys of copies of one Claude message under another request id that are replays."""
        by_message: dict[str, list[ImportedResponse]] = defaultdict(list)
        for r in items:
            if r.agent == "claude" and r.response_id:
                by_message[r.response_id].append(r)
        out = set()
        for group in by_message.values():
            if len(group) < 2:
                continue
            canonical = min(group, key=lambda r: (r.sidechain, not r.has_request_id, r.started_at_ms))
            for r in group:
                if r is not canonical and (r.sidechain or not r.has_request_id or not canonical.has_request_id):
                    out.add(r.import_key)
        return out

    # -- writing --------------------------------------------------------------------------------------

    def _prepare(self, keep: list[ImportedResponse]) -> tuple[list[tuple], list[dict]]:
        existing = store.existing_keys(self.ledger, [r.import_key for r in keep])
        spans: dict[str, dict] = {}
        for r in keep:
            sid, row = self._session(r)
            if row is not None:
                span = spans.setdefault(sid, {**row, "started_at": r.started_at_ms, "ended_at": r.started_at_ms})
                span["started_at"] = min(span["started_at"], r.started_at_ms)
                span["ended_at"] = max(span["ended_at"], r.started_at_ms)
        return [(r, self._record(r), existing.get(r.import_key)) for r in keep], list(spans.values())

    def _write(self, prepared: list[tuple], sessions: list[dict]) -> None:
        for row in sessions:
            if store.ensure_session(self.ledger, row):
                self.summary.sessions_created += 1
        for r, rec, old in prepared:
            self._count(r, rec, store.upsert(self.ledger, rec, old), old and (usage_of(old), old["cost_usd"]))

    def _dry_write(self, keep: list[ImportedResponse]) -> None:
        existing = store.existing_keys(self.ledger, [r.import_key for r in keep])
        for r in keep:
            sid, row = self._session(r)
            if row is not None and sid not in self._dry_sessions and not self._session_exists(sid):
                self._dry_sessions.add(sid)
                self.summary.sessions_created += 1
            rec = self._record(r)
            old = existing.get(r.import_key)
            stored = self._dry_keys.get(r.import_key) or (old and (usage_of(old), old["cost_usd"]))
            if stored is None:
                result = "added"
            else:
                result = "updated" if _size(r.usage) > _size(stored[0]) else "kept"
            if result != "kept":
                self._dry_keys[r.import_key] = (r.usage, rec.cost_usd)
            if r.response_id:
                self._dry_owners[r.response_id].append((r.source, r.import_key))
            self._count(r, rec, result, stored)

    def _count(
        self, r: ImportedResponse, rec: RequestRecord, result: str, old: tuple[Usage, float | None] | None
    ) -> None:
        same_run = r.import_key in self._flushed  # a later copy of a response this run already wrote
        if result == "kept":
            if not same_run:
                self.summary.already_imported += 1
            return
        if result == "added":
            self.summary.added += 1
            self.summary.added_usage = self.summary.added_usage + r.usage
            self.summary.added_cost_usd += rec.cost_usd or 0.0
        else:
            if not same_run:
                self.summary.updated += 1
            if old is not None:
                was, was_cost = old
                self.summary.added_usage = Usage(
                    **{k: v - getattr(was, k) for k, v in (self.summary.added_usage + r.usage).as_dict().items()}
                )
                self.summary.added_cost_usd += (rec.cost_usd or 0.0) - (was_cost or 0.0)
        if rec.unpriced and rec.model_used:
            self.summary.unpriced_models.add(f"{rec.provider}:{rec.model_used}")
        where = self._where.get(r.import_key)
        if where:
            self.file_rows[where] += 1

    def _session_exists(self, sid: str) -> bool:
        return self.ledger.conn.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)).fetchone() is not None

    def _session(self, r: ImportedResponse) -> tuple[str | None, dict | None]:
        """The agentmeter session of a response, and the row of an imported session to create or widen."""
        if r.session_id:
            return r.session_id, None
        asid = r.agent_session_id
        if not asid:
            return None, None
        known = self.sessions.get(asid)
        if known and not known["imported"]:
            return known["id"], None  # a `run` session: the proxy saw this agent session
        sid = known["id"] if known else "i" + _digest(f"{r.agent}:{asid}", 11)
        att = {} if known else self._attribute(r)
        identity = getattr(self.config, "identity", None)
        row = {
            "id": sid,
            "token_hash": store.IMPORT_TOKEN_PREFIX + _digest(f"{r.agent}:{asid}", 64),
            "key_mode": "",
            "agent": r.agent,
            "agent_session_id": asid,
            "developer": r.developer or getattr(identity, "developer", None) or att.get("developer"),
            "team": getattr(identity, "team", None),
            "cost_center": getattr(identity, "cost_center", None),
            "repo": known["repo"] if known else att.get("repo"),
            "branch": known["branch"] if known else (r.branch or att.get("branch")),
            "cwd": r.cwd,
            "tags": {"source": r.source},
        }
        if not known:
            self.sessions[asid] = {"id": sid, "repo": row["repo"], "branch": row["branch"], "imported": True}
        return sid, row

    def _attribute(self, r: ImportedResponse) -> dict[str, Any]:
        """Repo, branch and developer from the transcript's working directory, when it still exists."""
        from ..home.attribution import detect, normalise_remote

        found: dict[str, Any] = {}
        if r.cwd and r.cwd not in self._attribution:
            if Path(r.cwd).is_dir():
                a = detect(r.cwd)
                found = {"repo": a.repo, "branch": a.branch, "developer": a.developer}
            self._attribution[r.cwd] = found
        found = dict(self._attribution.get(r.cwd or "", {}))
        if r.repo:  # Codex records the remote itself
            found["repo"] = normalise_remote(r.repo)
        return found

    def _record(self, r: ImportedResponse) -> RequestRecord:
        from .. import pricing
        from ..core.bounds import bound_record

        info = self.sessions.get(r.agent_session_id or "") or {}
        sid = r.session_id or info.get("id")
        rec = RequestRecord(
            request_id="imp_" + _digest(r.import_key, 24),
            session_id=sid,
            started_at_ms=r.started_at_ms,
            provider=r.provider,
            api=r.api,
            method="POST",
            path=r.path,
            model_requested=r.model,
            model_used=r.model,
            stream=True,
            status="ok",
            http_status=None,
            usage=r.usage,
            response_id=r.response_id,
            upstream_request_id=r.upstream_request_id,
            agent_session_id=r.agent_session_id,
            agent_id=r.agent_id,
            subscription=r.subscription,
            agent=r.agent,
            repo=info.get("repo") or _repo(r.repo),
            branch=r.branch or info.get("branch"),
            source=r.source,
            import_key=r.import_key,
            reason=r.note,
            tier=r.tier,
        )
        rec = bound_record(rec, cost=False)  # before pricing: a log's absurd count is clamped and flagged
        if r.cost_usd is not None:
            return rec.with_(cost_usd=r.cost_usd, price_source=r.source)
        cfg = self.config
        # Priced at the response's own time and tier: history is billed at the prices of its day.
        c = pricing.price(
            r.provider,
            r.model,
            rec.usage,
            overrides=getattr(cfg, "prices", {}) or {},
            unknown_model=getattr(cfg, "unknown_model_price", None),
            tier=r.tier,
            at=pricing.when(r.started_at_ms) if r.started_at_ms else None,
        )
        return rec.with_(
            cost_usd=c.usd,
            price_source=c.source,
            price_model=c.matched_model,
            price_version=c.price_version,
            unpriced=c.unpriced,
            reason=(c.reason if c.unpriced else None) or rec.reason,
        )
