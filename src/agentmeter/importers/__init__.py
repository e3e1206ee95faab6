"""Usage that never passed through the proxy: Claude Code transcripts, Codex rollouts, Cursor's export.

`import_logs` and `import_cursor` are what the CLI calls; parsers are in `claude.py`, `codex.py`,
`cursor.py`, deduplication and writing in `ingest.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..ledger.store import Ledger
from . import claude, codex, copilot, cursor, gemini
from .base import LineParser, find_files
from .ingest import ImportSummary, Ingest

# total bytes → a context manager yielding `advance(n)`
ProgressFactory = Callable[[int], contextlib.AbstractContextManager[Callable[[int], None]]]


@dataclass(frozen=True)
class LogSource:
    agent: str
    source: str
    roots: Callable[[], list[Path]]
    pattern: str
    parser: Callable[[Path], LineParser]
    # Transcripts are independent lines: an appended file is read from where the last import stopped.
    # Rollouts carry cumulative counters (state from the first line): a changed file is read again whole.
    resumable: bool


SOURCES = {
    "claude": LogSource("claude", claude.SOURCE, claude.roots, "*.jsonl", claude.ClaudeTranscript, True),
    "codex": LogSource("codex", codex.SOURCE, codex.roots, "rollout-*.jsonl", codex.CodexRollout, False),
    "gemini": LogSource("gemini", gemini.SOURCE, gemini.roots, "session-*.jsonl", gemini.GeminiSession, False),
    "copilot": LogSource("copilot", copilot.SOURCE, copilot.roots, "events.jsonl", copilot.CopilotEvents, False),
}


@contextlib.contextmanager
def _no_progress(total: int) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


def log_files(agent: str, paths: list[Path] | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """The agent's log files under `paths` (default: where the agent writes them), and missing paths."""
    spec = SOURCES[agent]
    missing = [(str(p), "no such file or directory") for p in paths or [] if not p.exists()]
    return find_files(list(paths) if paths else spec.roots(), spec.pattern), missing


def import_logs(
    agent: str,
    ledger: Ledger,
    paths: list[Path] | None = None,
    *,
    config=None,
    dry_run: bool = False,
    now_ms: int = 0,
    progress: ProgressFactory | None = None,
    batch: int = 500,
) -> ImportSummary:
    spec = SOURCES[agent]
    files, missing = log_files(agent, paths)
    ing = Ingest(ledger, spec.source, config=config, dry_run=dry_run, now_ms=now_ms, batch=batch)
    ing.summary.unreadable.extend(missing)
    todo = ing.plan(files, spec.resumable)
    with (progress or _no_progress)(sum(size - offset for _, offset, size, _ in todo)) as advance:
        ing.progress = advance
        ing.read(todo, spec.parser)
    return ing.summary


def import_cursor(
    ledger: Ledger,
    csv_paths: list[Path],
    *,
    config=None,
    dry_run: bool = False,
    now_ms: int = 0,
    api_since_ms: int | None = None,
    api_key: str | None = None,
) -> ImportSummary:
    """CSV exports, and the Admin API's events since `api_since_ms` when a key is given."""
    from ..core.errors import UsageError
    from ..ledger import imports as store

    ing = Ingest(ledger, cursor.SOURCE, config=config, dry_run=dry_run, now_ms=now_ms)
    sessions = store.cursor_sessions(ledger, 0, 2**62)
    for path in csv_paths:
        try:
            for r in cursor.attribute(cursor.read_csv(path), sessions):
                ing.add(r)
        except UsageError as exc:
            ing.summary.unreadable.append((str(path), exc.message + (f" ({exc.hint})" if exc.hint else "")))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            ing.summary.unreadable.append((str(path), getattr(exc, "strerror", None) or str(exc)))
            continue
        ing.summary.files_read += 1
    if api_key and api_since_ms is not None:
        events = cursor.fetch_events(api_key, api_since_ms, now_ms)
        for r in cursor.attribute(cursor.from_events(events), sessions):
            ing.add(r)
    ing.flush()
    return ing.summary


__all__ = ["SOURCES", "ImportSummary", "import_cursor", "import_logs", "log_files"]
