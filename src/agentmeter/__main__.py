"""Entry point. Heavy imports (typer, aiohttp, genai-prices) happen only in the commands that need them."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("AGENTMETER_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    from .core.errors import AgentmeterError

    if (refusal := platform_refusal(sys.platform, argv)) is not None:
        from . import render

        render.error(refusal.message, refusal.hint)
        return int(refusal.exit_code)
    try:
        if argv[:1] in (["--version"], ["-V"]):
            from . import __version__, render

            render.line(f"agentmeter {__version__}")
            return 0
        from .cli.fast import dispatch  # status, report --format, proxy serve, run, shell-init, prompt, statusline

        if (code := dispatch(argv)) is not None:
            return code  # parsed by hand: no typer, click or rich (the daemon would keep them resident)
        from .cli.main import app

        app(args=argv, prog_name="agentmeter", standalone_mode=True)
    except AgentmeterError as exc:
        if debug:
            raise
        from . import render

        render.error(exc.message, exc.hint)
        return int(exc.exit_code)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, never a traceback full of locals (keys)
        if debug:
            raise
        from . import render
        from .home.paths import as_storage_error
        from .home.secrets import redact

        if _ledger_damaged(exc):
            render.error(
                f"the ledger file is damaged ({exc})",
                "run: agentmeter doctor --repair (it keeps the damaged file and saves every readable row)",
            )
            return 1
        if (known := as_storage_error(exc)) is not None:  # a home or output path we cannot write: not a bug
            render.error(known.message, known.hint)
            return int(known.exit_code)

        render.error(
            f"internal error: {type(exc).__name__}: {redact(str(exc))}",
            "run again with --debug for the traceback, and please report it",
        )
        return 1
    return 0


def _ledger_damaged(exc: BaseException) -> bool:
    """SQLite's own word that the file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB), not a bug of ours."""
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is None or not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    return (code is not None and code & 0xFF in (11, 26)) or "malformed" in text or "not a database" in text


def platform_refusal(platform: str, argv: list[str]):
    """Windows has no fcntl, no process groups and no POSIX signals, which the launch and the daemon rely on:
    refuse clearly (help and version still answer) instead of crashing half-way."""
    if platform != "win32" or {"-h", "--help", "--version", "version"} & set(argv[:1] or ["-h"]):
        return None
    from .core.errors import AgentmeterError

    return AgentmeterError(
        "agentmeter runs on Linux and macOS, not natively on Windows",
        "use it inside WSL: https://learn.microsoft.com/windows/wsl/install",
    )


if __name__ == "__main__":
    sys.exit(main())
