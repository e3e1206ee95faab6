"""The command line: the typer application (main.py), and seven commands that also run without it (args.py, fast.py).

Importing this package must stay cheap: the fast paths import `cli.args` and `cli.fast` on every prompt and
shell start, so typer is imported only when `cli.main` is.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """`from agentmeter.cli import app` still works, importing typer only then."""
    if name == "app":
        from .main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
