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
        if argv[:1] == ["status"] and set(argv[1:]) <= {"--json"}:
            return _status("--json" in argv)  # the fast path: no typer, rich, aiohttp or genai-prices
        if argv[:1] in (["--version"], ["-V"]):
            from . import __version__, render

            render.line(f"agentmeter {__version__}")
            return 0
        if argv[:1] == ["report"] and ("--format" in argv or "--json" in argv) and not ({"-h", "--help"} & set(argv)):
            from .commands.report_cmd import fast_report  # json/csv for scripts: no typer

            code = fast_report(argv[1:])
            if code is not None:
                return code
        if argv[:2] == ["proxy", "serve"] and (served := _serve(argv[2:])) is not None:
            return served  # the daemon: typer, click and rich would stay resident for its whole life
        if argv[:1] == ["run"] and not ({"-h", "--help"} & set(argv[1:2])):
            from .launch.run import run_main  # the fast path: no typer, no rich until the summary

            return run_main(argv[1:])
        fast = _SHELL_FAST_PATHS.get(argv[0] if argv else "")
        if fast and not ({"-h", "--help"} & set(argv[1:])):
            return fast(argv[1:])  # run on every shell start, prompt and statusline render: no typer
        from .cli import app

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
            render.error(f"the ledger file is damaged ({exc})",
                         "run: agentmeter doctor --repair (it keeps the damaged file and saves every readable row)")
            return 1
        if (known := as_storage_error(exc)) is not None:  # a home or output path we cannot write: not a bug
            render.error(known.message, known.hint)
            return int(known.exit_code)

        render.error(f"internal error: {type(exc).__name__}: {redact(str(exc))}",
                     "run again with --debug for the traceback, and please report it")
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

    return AgentmeterError("agentmeter runs on Linux and macOS, not natively on Windows",
                           "use it inside WSL: https://learn.microsoft.com/windows/wsl/install")


def _status(as_json: bool) -> int:
    from .commands.status import build_status
    from .core.clock import SystemClock
    from .home.config import load_config
    from .render import status as render_status

    render_status.status_screen(build_status(load_config(), SystemClock()), as_json)
    return 0


def _serve(argv: list[str]) -> int | None:
    """`proxy serve [--port N] [--quiet]`, as the daemon is started; None for anything else (typer
    parses it and says what is wrong)."""
    port, quiet, rest = None, False, list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--quiet":
            quiet = True
        elif arg == "--no-quiet":
            quiet = False
        elif arg.startswith("--port=") or (arg == "--port" and rest):
            value = arg.split("=", 1)[1] if "=" in arg else rest.pop(0)
            if not value.isdigit():
                return None
            port = int(value)
        else:
            return None
    from .proxy import daemon

    daemon.serve(port=port, quiet=quiet)
    return 0


def _shell_init(argv: list[str]) -> int:
    from .hooks.shell import main as shell_init_main

    return shell_init_main(argv)


def _prompt(argv: list[str]) -> int:
    from .commands.prompt import main as prompt_main

    return prompt_main(argv)


def _statusline(argv: list[str]) -> int:
    from .commands.statusline import main as statusline_main

    return statusline_main(argv)


_SHELL_FAST_PATHS = {"shell-init": _shell_init, "prompt": _prompt, "statusline": _statusline}


if __name__ == "__main__":
    sys.exit(main())
