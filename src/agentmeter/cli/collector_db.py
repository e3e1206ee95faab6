"""The `--db` option every `agentmeter collector …` command takes, and opening the store it names (shared by
cli/collector.py and cli/collector_team.py, which would otherwise import each other)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import UsageError

Db = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="AGENTMETER_COLLECTOR_DB",
        show_envvar=True,
        help="The collector's database: a SQLite file (serve, token add and caps set "
        "create it; the other commands need it to exist) or a postgresql:// URL (the "
        "`postgres` extra; put the password in PGPASSWORD or ~/.pgpass, not here).",
    ),
]


def _store(db: str, create: bool = False):
    from ..collector import engine
    from ..collector.store import open_store

    if not engine.is_postgres(db) and not create and not Path(db).expanduser().is_file():
        # a mistyped --db must not read as an empty team
        raise UsageError(
            f"{db}: no such collector database",
            "check the --db path; `agentmeter collector serve --db PATH` creates one",
        )
    try:
        return open_store(db)
    except engine.EngineError as exc:
        hint = (
            (
                "check the URL, that the server is up and that this user may connect (PGPASSWORD or ~/.pgpass "
                "for a password)"
            )
            if engine.is_postgres(db)
            else "point --db at the collector's .db file"
        )
        if "postgres extra" in str(exc):
            hint = "or use a SQLite file: --db PATH"
        raise UsageError(str(exc), hint) from None
    except engine.database_errors() as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(
            f"{engine.display(db)}: not a collector database ({first})", "point --db at the collector's database"
        ) from None
