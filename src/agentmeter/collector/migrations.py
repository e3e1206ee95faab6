"""The collector's schema, by named migrations of its own (never the client ledger's). Never renumber or edit
an applied migration: add a new one at the end.

The same migrations build the same schema on SQLite and PostgreSQL: write DDL in SQLite's STRICT spelling
(INTEGER, REAL, TEXT, BLOB; the engine maps them on PostgreSQL, see engine.py) and every other statement in
portable SQL with `?` placeholders, through `db.execute(sql, params)` only.
"""

from __future__ import annotations

import secrets

from .engine import Database
from .schema_migrations import Migrations

migrations = Migrations("agentmeter-collector")

# Frozen here, not imported: an applied migration must build the same tables forever. A new token bucket in
# the client's ledger needs a new collector migration (ALTER TABLE … ADD COLUMN) as well.
_C001_TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "web_search_requests",
)


@migrations()
def c001_initial(db: Database) -> None:
    tokens = ",\n".join(f"    {c} INTEGER NOT NULL DEFAULT 0" for c in _C001_TOKENS)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")
    # Clients compare this id with the one they last pushed to: a new one (a lost database) re-sends everything.
    db.execute("INSERT INTO meta (key, value) VALUES ('collector_id', ?)", (secrets.token_hex(8),))
    db.execute(
        """
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    developer TEXT NOT NULL,
    team TEXT,
    admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT"""
    )
    # Items are keyed by the developer the token names plus the client's deterministic key, so a re-push
    # replaces its row and no token can overwrite another developer's rows.
    db.execute(
        f"""
CREATE TABLE rollups (
    developer TEXT NOT NULL,
    item_key TEXT NOT NULL,
    device_id TEXT NOT NULL,
    team TEXT NOT NULL DEFAULT '',
    cost_center TEXT NOT NULL DEFAULT '',
    day TEXT NOT NULL,
    agent TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    repo TEXT NOT NULL,
    subscription INTEGER NOT NULL,
    requests INTEGER NOT NULL,
{tokens},
    cost_usd REAL NOT NULL,
    unpriced_requests INTEGER NOT NULL DEFAULT 0,
    cost_by_type TEXT NOT NULL DEFAULT '{{}}',
    received_at INTEGER NOT NULL,
    PRIMARY KEY (developer, item_key)
) STRICT"""
    )
    db.execute("CREATE INDEX rollups_day ON rollups(day)")
    db.execute(
        f"""
CREATE TABLE sessions (
    developer TEXT NOT NULL,
    item_key TEXT NOT NULL,
    device_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    team TEXT NOT NULL DEFAULT '',
    cost_center TEXT NOT NULL DEFAULT '',
    agent TEXT NOT NULL,
    repo TEXT NOT NULL DEFAULT '',
    branch TEXT NOT NULL DEFAULT '',
    day TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    requests INTEGER NOT NULL,
{tokens},
    cost_usd REAL NOT NULL,
    unpriced_requests INTEGER NOT NULL DEFAULT 0,
    models TEXT NOT NULL DEFAULT '[]',
    received_at INTEGER NOT NULL,
    PRIMARY KEY (developer, item_key)
) STRICT"""
    )
    db.execute("CREATE INDEX sessions_day ON sessions(day)")
    db.execute(
        """
CREATE TABLE caps (
    scope TEXT NOT NULL CHECK (scope IN ('team', 'developer')),
    name TEXT NOT NULL,
    daily_usd REAL,
    weekly_usd REAL,
    monthly_usd REAL,
    daily_tokens INTEGER,
    weekly_tokens INTEGER,
    monthly_tokens INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, name)
) STRICT"""
    )


@migrations()
def c008_token_cost_center(db: Database) -> None:
    # Issue 14 item 11: a token's team and cost centre are set by the admin at `collector token add` and
    # never taken from a push, so a developer cannot charge another team or pick whose caps apply.
    db.execute("ALTER TABLE tokens ADD COLUMN cost_center TEXT")


@migrations()
def c016_caps_allow_snooze(db: Database) -> None:
    """Whether a developer's `budget snooze` may lift this team or developer cap (issue 16): off unless the
    lead says so."""
    db.execute("ALTER TABLE caps ADD COLUMN allow_snooze INTEGER NOT NULL DEFAULT 0")


@migrations()
def c023_rollups_last_push(db: Database) -> None:
    """Issue 20 item 3: /metrics reads each developer's last push (MAX(received_at) per developer) on every
    scrape; with this index that is one short index range per developer instead of a scan of every rollup."""
    db.execute("CREATE INDEX rollups_developer_received ON rollups(developer, received_at)")


@migrations()
def c017_plan_windows(db: Database) -> None:
    """Each developer's subscription plan windows (issue 18 item 3), as their clients last saw them: the latest
    reading per device, provider, account and window, shown next to the team's dollars. Unix seconds fit 32
    bits until 2106 but are declared BIGINT-able (INTEGER) like the other times."""
    db.execute(
        """
CREATE TABLE plan_windows (
    developer TEXT NOT NULL,
    item_key TEXT NOT NULL,
    device_id TEXT NOT NULL,
    team TEXT NOT NULL DEFAULT '',
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    window_name TEXT NOT NULL,
    used_pct REAL NOT NULL,
    resets_at INTEGER,
    status TEXT,
    seen_at INTEGER NOT NULL,
    runs_out_at INTEGER,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (developer, item_key)
) STRICT"""
    )


@migrations()
def c018_aggregates(db: Database) -> None:
    """Spend pre-aggregated per developer-day (issue 20 item 2), filled from the rollups already stored; every
    push keeps it in step from now on (aggregates.py)."""
    from . import aggregates

    sums = ",\n".join(
        f"    {c} {'REAL' if c == 'cost_usd' else 'INTEGER'} NOT NULL DEFAULT 0"
        for c in (*_C001_TOKENS, "requests", "cost_usd", "unpriced_requests")
    )
    db.execute(f"""
CREATE TABLE agg_developer_day (
    day TEXT NOT NULL,
    developer TEXT NOT NULL,
    device_id TEXT NOT NULL,
    team TEXT NOT NULL,
    cost_center TEXT NOT NULL,
    subscription INTEGER NOT NULL,
{sums},
    received_at INTEGER NOT NULL,
    PRIMARY KEY (day, developer, device_id, team, cost_center, subscription)
) STRICT, WITHOUT ROWID""")
    db.execute("CREATE INDEX agg_developer_day_developer ON agg_developer_day(developer, day)")
    db.execute(f"""
CREATE TABLE agg_dimension_day (
    dim TEXT NOT NULL,
    day TEXT NOT NULL,
    key TEXT NOT NULL,
    developer TEXT NOT NULL,
{sums},
    PRIMARY KEY (dim, day, key, developer)
) STRICT, WITHOUT ROWID""")
    db.execute("CREATE INDEX agg_dimension_day_developer ON agg_dimension_day(developer, day)")
    # The same summed over developers (kept by adding each push's difference): a month of a report by model is
    # a few hundred rows, not one per developer.
    db.execute(f"""
CREATE TABLE agg_dimension_total (
    dim TEXT NOT NULL,
    day TEXT NOT NULL,
    key TEXT NOT NULL,
{sums},
    PRIMARY KEY (dim, day, key)
) STRICT, WITHOUT ROWID""")
    # A push recomputes a developer's day from its rollups: find them without reading the developer's history.
    db.execute("CREATE INDEX rollups_developer_day ON rollups(developer, day)")
    aggregates.rebuild(db)


@migrations()
def c019_team_wallet(db: Database) -> None:
    """Issue 20 item 4: caps over a team's pooled spend (member ''), the sub-cap of every member ('*') and of
    one member (their name). STRICT spelling: INTEGER is BIGINT on PostgreSQL (tokens, milliseconds)."""
    db.execute(
        """
CREATE TABLE wallets (
    team TEXT NOT NULL,
    member TEXT NOT NULL DEFAULT '',
    daily_usd REAL,
    weekly_usd REAL,
    monthly_usd REAL,
    daily_tokens INTEGER,
    weekly_tokens INTEGER,
    monthly_tokens INTEGER,
    allow_snooze INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (team, member)
) STRICT"""
    )
    # The wallet's figure is one grouped scan of a team's last 40 days, on every member's caps fetch.
    db.execute("CREATE INDEX rollups_team_day ON rollups(team, day)")


@migrations()
def c020_alert_routes(db: Database) -> None:
    """Issue 20 item 5: each team's alert webhook (Slack-compatible or generic JSON), and every alert claimed
    once per (team, kind, window, period, threshold) before it is sent, so concurrent pushes send it once."""
    db.execute(
        """
CREATE TABLE alert_routes (
    team TEXT PRIMARY KEY,
    webhook TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'json',
    thresholds TEXT NOT NULL DEFAULT '0.8,1.0',
    digest_hour INTEGER,
    updated_at INTEGER NOT NULL
) STRICT"""
    )
    db.execute(
        """
CREATE TABLE alerts_sent (
    team TEXT NOT NULL,
    kind TEXT NOT NULL,
    win TEXT NOT NULL,
    period_start TEXT NOT NULL,
    threshold TEXT NOT NULL,
    claimed_at INTEGER NOT NULL,
    delivered_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (team, kind, win, period_start, threshold)
) STRICT"""
    )


@migrations()
def c021_audit_roles(db: Database) -> None:
    """Issue 20 item 6: a role per token (developer, lead, finance, admin; the old admin flag becomes the admin
    role) and the audit trail of cap changes and token issues and revocations (collector/audit.py)."""
    db.execute("ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'developer'")
    db.execute("UPDATE tokens SET role = 'admin' WHERE admin = 1")
    db.execute(
        """
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    token_id TEXT,
    developer TEXT,
    via TEXT NOT NULL,
    action TEXT NOT NULL,
    team TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL DEFAULT '',
    old TEXT,
    new TEXT,
    detail TEXT NOT NULL DEFAULT ''
) STRICT"""
    )
    db.execute("CREATE INDEX audit_at ON audit(at)")


@migrations()
def c022_chargeback(db: Database) -> None:
    """Issue 20 item 7: session line items carry their tags (run --tag K=V) and the commit the session ended on;
    `session_tags` holds one row per tag so reports group by a tag with a plain join (collector/chargeback.py)."""
    db.execute("ALTER TABLE sessions ADD COLUMN tags TEXT NOT NULL DEFAULT '{}'")
    db.execute("ALTER TABLE sessions ADD COLUMN end_commit TEXT")
    db.execute(
        """
CREATE TABLE session_tags (
    developer TEXT NOT NULL,
    item_key TEXT NOT NULL,
    tag TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (developer, item_key, tag)
) STRICT"""
    )
    db.execute("CREATE INDEX session_tags_tag ON session_tags(tag, value)")


@migrations()
def c024_session_subagents(db: Database) -> None:
    """Issue 20 item 7: a session line item carries its sub-agents' sums (Claude Code's agent ids), one row per
    (session item, sub-agent), so `collector report --by subagent` groups them with a plain scan."""
    db.execute(
        """
CREATE TABLE session_subagents (
    developer TEXT NOT NULL,
    item_key TEXT NOT NULL,
    subagent TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_5m_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    web_search_requests INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    unpriced_requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (developer, item_key, subagent)
) STRICT"""
    )


@migrations()
def c025_rollup_tag_split(db: Database) -> None:
    """Issue 20 item 7: a rollup item carries its share from tagged sessions per tag set (JSON, NULL when
    untagged), so the collector's FOCUS export splits the row by chargeback tags as the local export does."""
    db.execute("ALTER TABLE rollups ADD COLUMN tag_split TEXT")
