"""Schema by named migrations. Never renumber or edit an applied migration: add a new one."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from .schema import SCHEMA_VERSION, TOKEN_COLUMNS

migrations = Migrations("agentmeter")


def _version(db: Database, n: int) -> None:
    # PRAGMA user_version lets a read-only open see pending migrations without importing sqlite-utils.
    db.execute(f"PRAGMA user_version = {n}")


@migrations()
def m001_initial(db: Database) -> None:
    tokens = ",\n".join(f"    {c} INTEGER NOT NULL DEFAULT 0" for c in TOKEN_COLUMNS)
    db.execute(
        """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    vkey_hash TEXT,
    key_mode TEXT NOT NULL DEFAULT '',
    agent TEXT NOT NULL,
    agent_session_id TEXT,
    developer TEXT,
    team TEXT,
    cost_center TEXT,
    repo TEXT,
    branch TEXT,
    cwd TEXT,
    tags TEXT NOT NULL DEFAULT '{}',
    budget_usd REAL,
    pid INTEGER,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    exit_code INTEGER
) STRICT"""
    )
    db.execute(
        f"""
CREATE TABLE requests (
    request_id TEXT PRIMARY KEY,
    session_id TEXT,
    started_at INTEGER NOT NULL,
    day TEXT NOT NULL,
    provider TEXT NOT NULL,
    api TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    model_requested TEXT,
    model_used TEXT,
    stream INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    http_status INTEGER,
{tokens},
    cost_usd REAL,
    price_source TEXT NOT NULL DEFAULT 'none',
    price_model TEXT,
    price_version TEXT,
    unpriced INTEGER NOT NULL DEFAULT 0,
    partial INTEGER NOT NULL DEFAULT 0,
    unmetered INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    decision TEXT NOT NULL DEFAULT 'allow',
    upstream_request_id TEXT,
    response_id TEXT,
    agent_session_id TEXT,
    agent_id TEXT,
    ttft_ms REAL,
    duration_ms REAL,
    subscription INTEGER NOT NULL DEFAULT 0,
    agent TEXT,
    repo TEXT,
    branch TEXT
) STRICT"""
    )
    db.execute("CREATE INDEX requests_session ON requests(session_id, started_at)")
    db.execute("CREATE INDEX requests_started ON requests(started_at)")
    db.execute("CREATE INDEX requests_response ON requests(response_id) WHERE response_id IS NOT NULL")
    # The rollup that status and reports read instead of scanning requests. Dimensions are '' rather
    # than NULL so they can be part of the primary key.
    db.execute(
        f"""
CREATE TABLE usage_daily (
    day TEXT NOT NULL,
    agent TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    repo TEXT NOT NULL,
    subscription INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
{tokens},
    cost_usd REAL NOT NULL DEFAULT 0,
    unpriced_requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, agent, provider, model, repo, subscription)
) STRICT"""
    )
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")
    _version(db, 1)


@migrations()
def m002_budget(db: Database) -> None:
    # The facts the policy saw, so `budget test` can replay a request exactly as it was decided live.
    for col, kind in (
        ("est_input_tokens", "INTEGER"),
        ("turn_boundary", "INTEGER"),
        ("loop_streak", "INTEGER"),
        ("downgrade_to", "TEXT"),
        ("pinned", "INTEGER"),
    ):
        db.execute(f"ALTER TABLE requests ADD COLUMN {col} {kind}")
    db.execute(
        """
CREATE TABLE alerts (
    key TEXT PRIMARY KEY,
    window TEXT NOT NULL,
    threshold REAL NOT NULL,
    spent_usd REAL,
    cap_usd REAL,
    sent_at INTEGER NOT NULL,
    channels TEXT NOT NULL DEFAULT ''
) STRICT"""
    )
    db.execute(
        """
CREATE TABLE overrides (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    until_at INTEGER,
    detail TEXT NOT NULL DEFAULT ''
) STRICT"""
    )
    _version(db, 2)


@migrations()
def m003_imports(db: Database) -> None:
    # Usage that never passed through the proxy (agents' own logs, Cursor's export) carries its source and
    # a key that makes a re-import add nothing.
    db.execute("ALTER TABLE requests ADD COLUMN source TEXT NOT NULL DEFAULT 'proxy'")
    db.execute("ALTER TABLE requests ADD COLUMN import_key TEXT")
    db.execute("CREATE UNIQUE INDEX requests_import_key ON requests(import_key) WHERE import_key IS NOT NULL")
    db.execute(
        """
CREATE TABLE import_files (
    path TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    offset INTEGER NOT NULL DEFAULT 0,
    rows INTEGER NOT NULL DEFAULT 0,
    imported_at INTEGER NOT NULL
) STRICT"""
    )
    _version(db, 3)


@migrations()
def m004_sync(db: Database) -> None:
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")
    # What was last pushed for each summary row, so only changed rows go out again.
    db.execute(
        "CREATE TABLE sync_pushed (item_key TEXT PRIMARY KEY, digest TEXT NOT NULL, pushed_at INTEGER NOT NULL) STRICT"
    )
    _version(db, 4)


@migrations()
def m005_inflight(db: Database) -> None:
    # A journal of responses being relayed right now. Each entry is written when a request goes upstream and
    # deleted with its final row; entries left behind by a killed daemon become `partial` rows at the next
    # start, so an interrupted response is never silently missing from the ledger.
    db.execute(
        "CREATE TABLE inflight (request_id TEXT PRIMARY KEY, started_at INTEGER NOT NULL, record TEXT NOT NULL) STRICT"
    )
    _version(db, 5)


@migrations()
def m008_bound_usage(db: Database) -> None:
    # Issue 14 item 6: rows written before usage was bounded (core/bounds.py) may hold 2**62 tokens or a negative
    # count from a hostile upstream; such rows made every SUM overflow. Clamp them as new rows are clamped,
    # say so in their reason, and rebuild the rollup from the clamped rows.
    from ..core.bounds import (
        CLAMP_PREFIX,
        MAX_COST_USD_PER_REQUEST,
        MAX_TOKENS_PER_REQUEST,
        MAX_WEB_SEARCHES_PER_REQUEST,
    )
    from .store import Ledger

    changed = 0
    for col in TOKEN_COLUMNS:
        ceiling = MAX_WEB_SEARCHES_PER_REQUEST if col == "web_search_requests" else MAX_TOKENS_PER_REQUEST
        cur = db.execute(
            f"UPDATE requests SET reason = ? || {col} || ' out of bounds'"
            f" || COALESCE(' | ' || reason, ''), {col} = CASE WHEN {col} < 0 THEN 0 ELSE ? END,"
            f" cost_usd = MIN(MAX(COALESCE(cost_usd, 0), 0), ?) WHERE {col} < 0 OR {col} > ?",
            [f"{CLAMP_PREFIX}: {col} ", ceiling, MAX_COST_USD_PER_REQUEST, ceiling],
        )
        changed += cur.rowcount
    cur = db.execute(
        "UPDATE requests SET cost_usd = MIN(MAX(cost_usd, 0), ?) WHERE cost_usd < 0 OR cost_usd > ?",
        [MAX_COST_USD_PER_REQUEST, MAX_COST_USD_PER_REQUEST],
    )
    changed += cur.rowcount
    if changed:
        Ledger(db.conn, None)._rebuild_rollup()  # type: ignore[arg-type]
    _version(db, 6)


@migrations()
def m007_plan_windows(db: Database) -> None:
    # Subscription plan windows read off response headers (providers/ratelimits.py): one compact row per
    # response that carried them, and the latest reading per account and window for status and the brake.
    db.execute(
        """
CREATE TABLE plan_snapshots (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    request_id TEXT,
    session_id TEXT,
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    status TEXT,
    data TEXT NOT NULL
) STRICT"""
    )
    db.execute("CREATE INDEX plan_snapshots_account_at ON plan_snapshots(provider, account, at)")
    db.execute(
        """
CREATE TABLE plan_latest (
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    window TEXT NOT NULL,
    used_pct REAL NOT NULL,
    resets_at INTEGER,
    window_minutes INTEGER,
    status TEXT,
    at INTEGER NOT NULL,
    session_id TEXT,
    raw TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (provider, account, window)
) STRICT"""
    )
    _version(db, [m.name for m in migrations._migrations].index("m007_plan_windows") + 1)


@migrations()
def m006_price_tier(db: Database) -> None:
    # Issue 15: the tier a request was served at (fast mode, priority, flex, batch) is priced at its own
    # rates, and `reprice` must know it again later.
    db.execute("ALTER TABLE requests ADD COLUMN tier TEXT")
    _version(db, [m.name for m in migrations._migrations].index("m006_price_tier") + 1)


@migrations()
def m009_chargeback(db: Database) -> None:
    # Issue 20 item 7: the git commit (HEAD) the session's repository was on when the session ended, so spend
    # can be attributed to a commit or a range of them (`report --by commit`, `--commits A..B`). Sub-agent ids
    # are already per request (requests.agent_id) and tags per session (sessions.tags).
    db.execute("ALTER TABLE sessions ADD COLUMN end_commit TEXT")
    db.execute("CREATE INDEX requests_agent_id ON requests(agent_id) WHERE agent_id IS NOT NULL")
    _version(db, [m.name for m in migrations._migrations].index("m009_chargeback") + 1)


@migrations()
def m010_audit(db: Database) -> None:
    # Issue 20 item 6: who changed which cap, snooze or key, when, from what to what (ledger/audit.py).
    db.execute(
        """
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    old TEXT,
    new TEXT,
    detail TEXT NOT NULL DEFAULT ''
) STRICT"""
    )
    db.execute("CREATE INDEX audit_at ON audit(at)")
    _version(db, [m.name for m in migrations._migrations].index("m010_audit") + 1)


assert len(migrations._migrations) == SCHEMA_VERSION, "bump schema.SCHEMA_VERSION with each migration"
