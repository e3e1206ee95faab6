"""Printing for `import` and `reconcile`: a summary for people, `agentmeter.import/1` and
`agentmeter.reconcile/1` envelopes for scripts, a progress bar on stderr. Data to stdout, notes to stderr."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from . import emit_json, error, line, tokens, usd

# Below this a bar would only flicker.
_BAR_MIN_BYTES = 8 * 1024 * 1024


@contextlib.contextmanager
def progress_bar(total: int) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr when stderr is a terminal and the import is long enough to need one."""
    if not sys.stderr.isatty() or total < _BAR_MIN_BYTES:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=total)
        yield lambda n: bar.advance(task, n)


def problems(payload: dict[str, Any]) -> None:
    """One stderr line per file that could not be read, and per file with lines that were skipped."""
    for u in payload.get("unreadable", []):
        error(f"could not read {u['path']}: {u['reason']}")
    for m in payload.get("malformed", []):
        s = "s" if m["lines"] != 1 else ""
        error(f"skipped {m['lines']} malformed line{s} in {m['path']} (first at line {m['first_line']})")


def import_result(payload: dict[str, Any], as_json: bool) -> None:
    problems(payload)
    if as_json:
        emit_json("import", payload)
        return
    p = payload
    head = "dry run, nothing written: would add" if p["dry_run"] else "added"
    files = f"{p['files_read']} file{'s' if p['files_read'] != 1 else ''} read"
    if p["files_unchanged"]:
        files += f", {p['files_unchanged']} unchanged since the last import"
    line(f"{p['source']}: {files}; {p['responses']} responses")
    t = p["added_tokens"]
    line(
        f"  {head} {p['added']} · in {tokens(t['input_tokens'])} · cache r {tokens(t['cache_read_tokens'])}"
        f" · cache w {tokens(t['cache_write_tokens'])} · out {tokens(t['output_tokens'])}"
        f" · {usd(p['added_cost_usd'], unpriced=bool(p['unpriced_models']))}"
    )
    skipped = [
        (p["matched_proxy"], "already metered by the proxy"),
        (p["already_imported"], "already imported"),
        (p["replayed_dropped"], "replayed copies dropped"),
        (p["updated"], "updated with a larger copy"),
    ]
    if any(n for n, _ in skipped):
        line("  " + " · ".join(f"{n} {what}" for n, what in skipped if n))
    if p["sessions_created"]:
        line(
            f"  {p['sessions_created']} session{'s' if p['sessions_created'] != 1 else ''} "
            f"{'would be ' if p['dry_run'] else ''}created (see: agentmeter sessions)"
        )
    if p["unpriced_models"]:
        line(f"  * unpriced models counted at a fallback rate: {', '.join(p['unpriced_models'])}")


_LABELS = (
    ("requests", "requests"),
    ("input_tokens", "input"),
    ("cache_read_tokens", "cache read"),
    ("cache_write_tokens", "cache write"),
    ("output_tokens", "output"),
    ("reasoning_tokens", "reasoning"),
)


def reconcile_result(payload: dict[str, Any], as_json: bool) -> None:
    problems(payload)
    if as_json:
        emit_json("reconcile", payload)
        return
    if not payload["groups"]:
        line("nothing to reconcile: no proxy rows and no agent logs in this period")
        return
    for g in payload["groups"]:
        line(f"session {g['session']} · {g['agent']} · {g['day']}")
        line(f"  {'':<12} {'proxy':>12} {'log':>12} {'difference':>12}")
        for key, label in _LABELS:
            p, lg, d = g["proxy"][key], g["log"][key], g["difference"][key]
            if p or lg:
                line(f"  {label:<12} {p:>12,} {lg:>12,} {d:>+12,}")
        for c in g["causes"]:
            line(f"  · {c['explanation']}")
        if not g["causes"]:
            line("  · proxy and log agree")
    t = payload["totals"]["difference"]
    line(
        f"total difference (log − proxy): {t['requests']:+,} requests · "
        + " · ".join(f"{label} {t[key]:+,}" for key, label in _LABELS[1:] if t[key])
    )
