"""The fast paths: the seven commands that run without typer, and what each runs with its typed arguments.

`__main__` calls `dispatch(argv)` before it imports typer; a command's parser (cli/args.py) either builds its
arguments, and the command runs here, or gives up and typer parses the argv (help, errors, every other
command). The typer commands in cli/main.py call the same `run_*` functions, so both roads do one thing.
Imports stay inside the functions: only the command that runs pays for its modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import args as a


def run_status(args: a.StatusArgs) -> int:
    if args.watch:
        return run_top()
    from ..commands.status import build_status
    from ..core.clock import SystemClock
    from ..home.config import load_config
    from ..render import status as render_status

    render_status.status_screen(build_status(load_config(), SystemClock()), args.as_json)
    return 0


def run_top() -> int:
    from types import SimpleNamespace

    from ..commands import live
    from ..core.clock import SystemClock
    from ..home.config import load_config
    from ..home.paths import get_paths
    from ..render import live as render_live

    paths, clock = get_paths(), SystemClock()
    view = SimpleNamespace(build=lambda: live.view(load_config, clock, paths.ledger),
                           changed=lambda: live.fingerprint(paths.ledger, paths.config_file))
    return render_live.run(view)


def machine_report(argv: list[str]) -> a.ReportArgs | None:
    """Only json and csv reports skip typer: a table (rich) for a person is no script's hot path, and click
    in front of it turns a closed pipe (`report | head`) into a quiet exit."""
    args = a.parse_report(argv)
    return args if args is not None and args.output != "table" and not args.chart and args.html is None else None


def run_report(args: a.ReportArgs) -> int:
    from ..commands.report_cmd import run_report as report

    report(args.by, args.since, args.until, args.tz, args.output, args.chart, args.html)
    return 0


def run_serve(args: a.ServeArgs) -> int:
    from ..proxy import daemon

    daemon.serve(port=args.port, quiet=args.quiet)
    return 0


def run_run(args: a.RunArgs) -> int:
    from ..launch.run import run_main

    return run_main(args.agent, list(args.args), budget_usd=args.budget_usd, tags=dict(args.tags), quiet=args.quiet,
                    unmetered_on_error=args.unmetered_on_error)


def run_shell_init(args: a.ShellInitArgs) -> int:
    from ..hooks.shell import main

    return main(args.shell, install_it=args.install, refresh=args.refresh)


def run_prompt(args: a.PromptArgs) -> int:
    from ..commands.prompt import main

    return main(shell=None if args.shell == "plain" else args.shell, color=not args.no_color, as_json=args.as_json,
                plan=args.plan)


def run_statusline(args: a.StatuslineArgs) -> int:
    from ..commands.statusline import main

    return main(install_it=args.install, force=args.force, color=not args.no_color)


# command path -> (its parser, what runs it). `run` takes everything but help: its parser is the only one.
FAST: dict[tuple[str, ...], tuple[Callable[[list[str]], Any], Callable[[Any], int]]] = {
    ("status",): (a.parse_status, run_status),
    ("report",): (machine_report, run_report),
    ("proxy", "serve"): (a.parse_serve, run_serve),
    ("run",): (a.parse_run, run_run),
    ("shell-init",): (a.parse_shell_init, run_shell_init),
    ("prompt",): (a.parse_prompt, run_prompt),
    ("statusline",): (a.parse_statusline, run_statusline),
}


def parse(argv: list[str]) -> tuple[tuple[str, ...], Any] | None:
    """(command path, its typed arguments) when a fast parser takes `argv`; None: typer's turn."""
    for path, (parser, _run) in FAST.items():
        if tuple(argv[: len(path)]) == path:
            rest = argv[len(path):]
            if path == ("run",) and rest[:1] and rest[0] in a.HELP:
                return None  # `run --help`; later a --help is the agent's (`run claude --help`)
            if path != ("run",) and a.HELP & set(rest):
                return None
            parsed = parser(rest)
            return None if parsed is None else (path, parsed)
    return None


def dispatch(argv: list[str]) -> int | None:
    """Run `argv` without typer when a fast parser takes it; None when typer should parse it."""
    found = parse(argv)
    if found is None:
        return None
    path, parsed = found
    return FAST[path][1](parsed)
