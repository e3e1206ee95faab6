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
    view = SimpleNamespace(
        build=lambda: live.view(load_config, clock, paths.ledger),
        changed=lambda: live.fingerprint(paths.ledger, paths.config_file),
    )
    return render_live.run(view)


def machine_report(argv: list[str]) -> a.ReportArgs | None:
    """Only json and csv reports skip typer: a table (rich) for a person is no script's hot path, and click
    in front of it turns a closed pipe (`report | head`) into a quiet exit."""
    args = a.parse_report(argv)
    return args if args is not None and args.output != "table" and not args.chart and args.html is None else None


def run_report(args: a.ReportArgs) -> int:
    from ..commands.report_cmd import run_report as report

    report(args.by, args.since, args.until, args.tz, args.output, args.chart, args.html, commits=args.commits)
    return 0


def run_serve(args: a.ServeArgs) -> int:
    from ..proxy import daemon

    daemon.serve(port=args.port, quiet=args.quiet)
    return 0


def run_run(args: a.RunArgs) -> int:
    from ..launch.run import run_main

    return run_main(
        args.agent,
        list(args.args),
        budget_usd=args.budget_usd,
        tags=dict(args.tags),
        quiet=args.quiet,
        unmetered_on_error=args.unmetered_on_error,
    )


def run_shell_init(args: a.ShellInitArgs) -> int:
    """Print the hook for the shell (default: from $SHELL), after rewriting its cached copy with --refresh; or
    with --install, add it to the shell's rc file."""
    from .. import render
    from ..home.config import load_config
    from ..home.paths import get_paths
    from ..hooks import shell as hooks

    shell = args.shell or hooks.detect_shell()
    config = load_config()
    config_file = get_paths().config_file
    if args.install:
        done = hooks.install(shell, config.agents, config_file)
        if done.already:
            render.info(f"agentmeter: already in {done.rc_file}; refreshed {done.cache_file}")
        else:
            saved = f" (backup: {done.backup})" if done.backup else ""
            render.info(
                f"agentmeter: added the shell hook to {done.rc_file}{saved}. Open a new shell, or: "
                f"source {done.rc_file}"
            )
        return 0
    if args.refresh:
        try:
            hooks.write_cache(shell, config.agents, config_file)
        except OSError as exc:  # still print the hook, so this shell gets it
            render.error(f"could not rewrite the cached hook: {exc}")
    render.line(hooks.hook(shell, config.agents).rstrip("\n"))
    return 0


def run_prompt(args: a.PromptArgs) -> int:
    import os

    from .. import render
    from ..commands import prompt
    from ..core.clock import SystemClock
    from ..home.paths import get_paths

    paths, clock = get_paths(), SystemClock()
    shell = None if args.shell == "plain" else args.shell  # bash and zsh mark colour codes for their line editor
    color = not args.no_color and not os.environ.get("NO_COLOR")
    if args.plan:
        text, window = prompt.plan_now(paths, clock, color=color and not args.as_json, shell=shell)
        if args.as_json:
            render.emit_json("prompt", {"plan": window, "text": text})
        elif text:
            render.line(text)
        return 0
    chosen = prompt.current(paths, clock)
    if args.as_json:
        render.emit_json(
            "prompt",
            {"window": chosen._asdict() if chosen else None, "text": prompt.segment(chosen, color=False, shell=None)},
        )
    elif text := prompt.segment(chosen, color=color, shell=shell):
        render.line(text)
    return 0


def run_statusline(args: a.StatuslineArgs, stdin_text: str | None = None) -> int:
    import os
    import sys

    from .. import render
    from ..commands import statusline

    if args.install:
        done = statusline.install(statusline.settings_file(), statusline.command_line(), force=args.force)
        if not done.changed:
            render.info(f"agentmeter: the status line is already set in {done.path}")
        else:
            saved = f" (backup: {done.backup})" if done.backup else ""
            render.info(f"agentmeter: set statusLine in {done.path}{saved}. It shows in Claude Code's next session.")
        return 0
    if stdin_text is None:  # by hand at a terminal there is no payload: don't wait for one
        stdin_text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    render.line(statusline.line_for(stdin_text, color=not args.no_color and not os.environ.get("NO_COLOR")))
    return 0


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
            rest = argv[len(path) :]
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
