"""`shell-init`, `prompt`, `statusline` and `completions`.

The first three run on every shell start, prompt or Claude Code render, so __main__ sends them to the
hand-written parsers in cli/args.py before typer is imported; the typer commands here build the same
arguments for --help, completion and errors, and run the same functions (cli/fast.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from . import fast
from .args import PromptArgs, ShellInitArgs, StatuslineArgs

Shell = Literal["bash", "zsh", "fish"]

completions_app = typer.Typer(help="Tab completion for bash, zsh and fish.", no_args_is_help=True)


def shell_init(
    ctx: typer.Context,
    shell: Annotated[Shell | None, typer.Argument(help="bash, zsh or fish (default: from $SHELL).")] = None,
    install: Annotated[bool, typer.Option("--install", help="Add the hook to your shell's rc file, once.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Rewrite the cached hook, then print it.")] = False,
) -> None:
    """Print the shell hook that runs your agents through agentmeter: eval "$(agentmeter shell-init zsh)".

    It wraps the agents listed in config.toml as shell.agents (default claude, codex, cursor). Bypass it with
    `command claude` or AGENTMETER_DISABLE=1.
    """
    raise SystemExit(fast.run_shell_init(ShellInitArgs(**ctx.params)))


def prompt(
    ctx: typer.Context,
    shell: Annotated[
        Literal["bash", "zsh", "plain"], typer.Option(help="Mark colour codes for this shell's line editor.")
    ] = "plain",
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (for starship, which styles it).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    plan: Annotated[
        bool, typer.Option("--plan", help="Show the subscription plan window nearest its limit instead.")
    ] = False,
) -> None:
    """A short budget segment for your prompt ($4.20/$20 21%), coloured by stage.

    Empty when there is no cap and nothing spent. See docs/shell.md for PS1, starship and p10k.
    """
    raise SystemExit(fast.run_prompt(PromptArgs(**ctx.params)))


def statusline(
    ctx: typer.Context,
    install: Annotated[bool, typer.Option("--install", help="Set it as Claude Code's statusLine.")] = False,
    force: Annotated[bool, typer.Option("--force", help="With --install: replace another statusLine.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour.")] = False,
) -> None:
    """Claude Code's status line: this session's cost, today's budget, and the official plan limits.

    Reads Claude Code's JSON on stdin. --install edits ~/.claude/settings.json (backed up, other settings kept).
    """
    raise SystemExit(fast.run_statusline(StatuslineArgs(**ctx.params)))


def cli_tree(root) -> list:
    """The command tree the completion scripts are written from, under `root` (the running CLI's root
    command, or scripts/gen_completions.py's); `run AGENT` completes to the known agents."""
    from ..agents import registry
    from ..hooks import completions

    return completions.command_tree(root, {("run", "agent"): tuple(registry())})


@completions_app.command("generate")
def completions_generate(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option(help="Directory to write agentmeter.bash, _agentmeter and agentmeter.fish into.")
    ] = Path("completions"),
) -> None:
    """Write the completion scripts for every shell (the repository's completions/ folder)."""
    from .. import render
    from ..hooks import completions

    for path in completions.write(output, cli_tree(ctx.find_root().command)):
        render.info(f"wrote {path}")


@completions_app.command("show")
def completions_show(ctx: typer.Context, shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print the completion script for one shell."""
    from .. import render
    from ..hooks import completions

    render.line(completions.GENERATORS[shell](cli_tree(ctx.find_root().command)).rstrip("\n"))


@completions_app.command("install")
def completions_install(
    ctx: typer.Context,
    shell: Annotated[Shell | None, typer.Argument(help="bash, zsh or fish (default: from $SHELL).")] = None,
) -> None:
    """Install the completion script where your shell finds it."""
    from .. import render
    from ..hooks import completions
    from ..hooks.shell import detect_shell

    shell = shell or detect_shell()
    path = completions.install(shell, cli_tree(ctx.find_root().command))
    render.info(f"agentmeter: wrote {path}")
    if shell == "zsh":
        render.info(f"  add before compinit in ~/.zshrc, if it is not there: fpath=({path.parent} $fpath)")
    elif shell == "bash":
        render.info("  bash-completion loads it in new shells; without bash-completion: source " + str(path))
