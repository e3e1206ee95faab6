"""What every importer yields, and reading agents' logs line by line with bounded memory.

Parsers are sans-io: a parser object is fed one raw line (bytes) at a time and returns zero or more
`ImportedResponse`. Reading files, deduplicating, matching against the proxy's rows and writing the ledger
happen in `ingest.py`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..core.models import Usage


@dataclass(frozen=True, slots=True)
class ImportedResponse:
    """One billed model response as an agent's log (or Cursor's export) reports it."""

    source: str  # `claude-log`, `codex-log`, `cursor-export`
    import_key: str  # stable across re-imports: `claude:<message id>:<request id>`, `codex:<response id>`, …
    agent: str  # claude, codex, cursor
    provider: str
    api: str
    path: str
    model: str | None
    started_at_ms: int
    usage: Usage
    agent_session_id: str | None = None
    response_id: str | None = None
    upstream_request_id: str | None = None
    agent_id: str | None = None  # a sub-agent
    cwd: str | None = None
    branch: str | None = None
    repo: str | None = None
    developer: str | None = None
    # Claude Code sub-agent (Task) traffic; a side-chain may replay a parent message under a new request id.
    sidechain: bool = False
    # What the source says was charged (Cursor); None means price the tokens.
    cost_usd: float | None = None
    # Included in a plan (Cursor "Included"): shown as API-equivalent, not billed.
    subscription: bool = False
    # The agentmeter session it belongs to, when the importer knows (Cursor: a `run cursor` time window).
    session_id: str | None = None
    note: str | None = None
    # The tier it was served at (`pricing.tiers.normalize_tier`): Claude Code fast mode, Codex priority.
    tier: str | None = None

    @property
    def has_request_id(self) -> bool:
        return bool(self.upstream_request_id)


class LineParser(Protocol):
    source: str

    def feed(self, line: bytes) -> list[ImportedResponse]:
        """One line in; raises ValueError for a line that should have been JSON and was not."""
        ...


def parse_ts(value: Any) -> int | None:
    """ISO-8601 (`2026-11-23T12:58:08.210Z`), epoch seconds or epoch milliseconds → epoch ms."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        n = float(value)
        return int(n if n > 10_000_000_000 else n * 1000)
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def loads(line: bytes) -> dict:
    """A JSON object, or ValueError (a truncated write, a stray byte)."""
    try:
        d = json.loads(line)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    return d


def read_lines(path: Path, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """Complete lines from `offset` on, each with the offset just past it.

    A last line without its newline is still being written by the agent: it is not yielded, so the
    stored offset stops before it and the next import reads it whole. Memory is one line at a time.
    """
    with open(path, "rb") as f:
        f.seek(offset)
        pos = offset
        for line in f:
            if not line.endswith(b"\n"):
                return
            pos += len(line)
            if line.strip():
                yield pos, line


def first_timestamp(path: Path, max_lines: int = 50) -> int | None:
    """The first line timestamp in a file: orders files so originals come before forks replaying them."""
    try:
        for n, (_, line) in enumerate(read_lines(path)):
            if n >= max_lines:
                return None
            if b'"timestamp"' in line:
                try:
                    ts = parse_ts(loads(line).get("timestamp"))
                except ValueError:
                    continue
                if ts is not None:
                    return ts
    except OSError:
        return None
    return None


def find_files(roots: list[Path], pattern: str) -> list[Path]:
    """Files under each root matching `pattern` (a root may itself be a file); missing roots are skipped."""
    out: dict[str, Path] = {}
    for root in roots:
        if root.is_file():
            out[os.path.abspath(root)] = Path(os.path.abspath(root))
        elif root.is_dir():
            for p in root.rglob(pattern):
                # A dangling symlink is listed too, so it is reported as unreadable rather than skipped silently.
                if p.is_file() or p.is_symlink():
                    out[os.path.abspath(p)] = Path(os.path.abspath(p))
    return [out[k] for k in sorted(out)]


def home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())
