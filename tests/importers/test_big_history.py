"""A large generated Claude Code history imports in bounded memory.

Default: ~50 MB. `AGENTMETER_BIG_TESTS=1`: 1 GB, imported through the CLI with its resident memory measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from agentmeter.importers import import_logs
from agentmeter.ledger import open_ledger

from .crafted import claude_line, write

BIG = os.environ.get("AGENTMETER_BIG_TESTS") == "1"
FILLER = 32 * 1024  # a tool result; most of a real history's bytes are these


def generate(root: Path, total_bytes: int, files: int = 8) -> int:
    """Transcripts of about `total_bytes`: each turn a large tool result, then a response in two streamed
    copies. Returns the number of distinct responses."""
    user = (
        json.dumps(
            {
                "type": "user",
                "message": {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x" * FILLER}],
                },
                "sessionId": "s",
                "timestamp": "2026-01-01T00:00:00.000Z",
            }
        ).encode()
        + b"\n"
    )
    turn = len(user) + 2 * len(claude_line("msg_00000000", "req_00000000")) + 2
    turns = total_bytes // turn // files
    n = 0
    for f in range(files):
        path = root / f"-proj-{f}" / f"session-{f}.jsonl"
        path.parent.mkdir(parents=True)
        with open(path, "wb", buffering=1 << 20) as out:
            for _ in range(turns):
                out.write(user)
                for copy_out in (1, 57):
                    out.write(
                        claude_line(
                            f"msg_{n:08d}",
                            f"req_{n:08d}",
                            session=f"session-{f}",
                            out=copy_out,
                            ts=f"2026-01-{1 + f:02d}T00:00:00.000Z",
                        ).encode()
                        + b"\n"
                    )
                n += 1
    return n


def _import_cli(home: Path) -> tuple[dict, float]:
    """`agentmeter import claude --json` in a subprocess: its result and its peak resident memory (MB)."""
    script = (
        "import resource, sys; from agentmeter.__main__ import main; rc = main(sys.argv[1:]); "
        "sys.stderr.write(f'maxrss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n'); sys.exit(rc)"
    )
    env = {**os.environ, "HOME": str(home), "CLAUDE_CONFIG_DIR": ""}
    r = subprocess.run(
        [sys.executable, "-c", script, "import", "claude", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), int(r.stderr.rsplit("maxrss_kb=", 1)[1].split()[0]) / 1024


def _check(tmp_path: Path, size: int, files: int, slack_mb: float) -> None:
    empty = tmp_path / "empty"
    (empty / ".claude" / "projects").mkdir(parents=True)
    _, baseline = _import_cli(empty)  # interpreter, SQLite, genai-prices, rich
    home = tmp_path / "home"
    n = generate(home / ".claude" / "projects", size, files=files)
    out, peak = _import_cli(home)
    assert out["added"] == n and out["bytes_read"] >= size * 0.95
    assert out["added_tokens"]["output_tokens"] == 57 * n  # the larger streamed copy of each response
    # a batch of rows and one line at a time, never a file: the import costs far less than it reads
    assert peak - baseline < slack_mb, f"resident memory {peak:.0f} MB against {baseline:.0f} MB for nothing"


def test_fifty_megabytes_in_bounded_memory(tmp_path):
    _check(tmp_path, 50 * 1024 * 1024, files=8, slack_mb=25)


@pytest.mark.skipif(not BIG, reason="set AGENTMETER_BIG_TESTS=1 to import a generated 1 GB history")
def test_one_gigabyte_in_bounded_memory(tmp_path):
    _check(tmp_path, 1024 * 1024 * 1024, files=16, slack_mb=25)


def test_python_heap_stays_small(tmp_path):
    """The same, in-process, on a smaller history: tracemalloc sees every Python allocation."""
    n = generate(tmp_path / "projects", 8 * 1024 * 1024, files=2)
    ledger = open_ledger(tmp_path / "ledger.db")
    import_logs("claude", ledger, [write(tmp_path / "warm" / "w.jsonl", [claude_line("m", "r")])])  # price tables
    tracemalloc.start()
    try:
        s = import_logs("claude", ledger, [tmp_path / "projects"], batch=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        ledger.close()
    assert s.added == n
    # measured 0.3 MB; reading one 4 MB transcript whole would already be twice this bound
    assert peak < 2 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for an 8 MB history"
