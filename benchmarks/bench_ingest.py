"""Ledger ingest: rows per second through `agentmeter.ledger.LedgerWriter`, in-process.

    python benchmarks/bench_ingest.py [--rows 50000]

The daemon's path for every response: `writer.record(rec, prepare=state.priced)` (pricing runs on the writer
thread, inside the batch's transaction), with the budget's `SpendTotals` attached, into a freshly migrated
ledger. Two numbers: bulk throughput (submit N records at once, wait for every future; the writer batches
up to its max_batch per transaction) and the latency of one commit when requests arrive one at a time
(what a stream's terminal event waits for, since the row is committed before it is relayed).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path


def _records(n: int, start_ms: int, tag: str) -> list:
    from agentmeter.core.models import RequestRecord, Usage

    models = ["claude-sonnet-4-5", "claude-opus-4-8", "claude-haiku-4-5"]
    out = []
    for i in range(n):
        out.append(
            RequestRecord(
                request_id=f"amr_{tag}{i:08d}",
                session_id="bench-session",
                started_at_ms=start_ms + i,
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/messages",
                model_requested=models[i % 3],
                model_used=models[i % 3],
                stream=True,
                status="ok",
                http_status=200,
                usage=Usage(
                    input_tokens=300 + i % 500,
                    cache_read_tokens=24_000 + i % 9000,
                    cache_write_tokens=1500,
                    cache_write_5m_tokens=1500,
                    output_tokens=200 + i % 700,
                ),
                upstream_request_id=f"req_{i}",
                response_id=f"msg_{tag}{i}",
                agent_session_id="bench-0000",
                ttft_ms=900.0,
                duration_ms=4200.0,
                agent="claude",
                repo="github.com/acme/api",
                branch="main",
            )
        )
    return out


def _pricer(path: Path, tz):
    """The daemon's own pricing step (proxy.metering.priced, run on the writer thread)."""
    from agentmeter.home.config import Config
    from agentmeter.proxy.metering import priced

    config = Config()
    return lambda rec: priced(rec, config)


def measure(rows: int = 50_000, single: int = 500) -> dict:
    from agentmeter.core.clock import SystemClock
    from agentmeter.core.timezone import resolve_tz
    from agentmeter.ledger import LedgerWriter, open_ledger
    from agentmeter.ledger.store import SpendTotals

    tz = resolve_tz("local")
    with tempfile.TemporaryDirectory(prefix="agentmeter-bench-") as tmp:
        path = Path(tmp) / "ledger.db"
        open_ledger(path, tz=tz).close()
        prepare = _pricer(path, tz)
        writer = LedgerWriter(path, tz=tz, totals=SpendTotals(tz)).start()
        now = SystemClock().now_ms()
        try:
            warm = _records(200, now - 10_000_000, "w")  # first batch pays for imports and the price table
            wait([writer.record(r, prepare) for r in warm])
            recs = _records(rows, now - 5_000_000, "b")
            t0 = time.perf_counter()
            futs = [writer.record(r, prepare) for r in recs]
            wait(futs)
            bulk_s = time.perf_counter() - t0
            failed = sum(1 for f in futs if f.exception() is not None)
            lat = []
            for r in _records(single, now - 1_000_000, "s"):
                t = time.perf_counter()
                writer.record(r, prepare).result()
                lat.append((time.perf_counter() - t) * 1000)
        finally:
            writer.close()
        conn = sqlite3.connect(path)
        stored = conn.execute("SELECT COUNT(*) FROM requests WHERE request_id LIKE 'amr_b%'").fetchone()[0]
        priced = conn.execute("SELECT COUNT(*) FROM requests WHERE cost_usd > 0").fetchone()[0]
        conn.close()
    lat.sort()
    return {
        "rows": rows,
        "bulk_s": round(bulk_s, 3),
        "rows_per_s": round(rows / bulk_s),
        "stored": stored,
        "failed": failed,
        "priced_rows": priced,
        "pricing": prepare is not None,
        "single_commit_p50_ms": round(lat[len(lat) // 2], 3),
        "single_commit_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3),
        "single_n": single,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--single", type=int, default=500)
    args = ap.parse_args()
    print(json.dumps(measure(args.rows, args.single), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
