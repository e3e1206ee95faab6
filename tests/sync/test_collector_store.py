"""The collector's own database: its own named migrations, private file, stable identity across reopenings."""

from __future__ import annotations

import sqlite3
import stat

from agentmeter.collector.store import open_store
from agentmeter.ledger.schema import TOKEN_COLUMNS


def test_migrations_build_the_schema_once_and_keep_the_collector_id(tmp_path):
    db = tmp_path / "new" / "team.db"
    store = open_store(db)
    cid = store.collector_id()
    store.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600 and stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    again = open_store(db)
    assert again.collector_id() == cid
    again.close()
    conn = sqlite3.connect(db)
    applied = conn.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
    assert applied == [("agentmeter-collector", "c001_initial"), ("agentmeter-collector", "c008_token_cost_center"),
                       ("agentmeter-collector", "c016_caps_allow_snooze")]
    cols = {r[1] for r in conn.execute("PRAGMA table_info(rollups)")}
    assert set(TOKEN_COLUMNS) <= cols  # every bucket the client pushes has a column
    assert "cwd" not in cols and "prompt" not in cols
    conn.close()
