"""`shell-init`, `prompt`, `statusline` and `completions`.

The first three run on every shell start, prompt or Claude Code render, so __main__ sends them to hand-parsed
fast paths (`hooks.shell.main`, `commands.prompt.main`, `commands.statusline.main`) before typer
is imported; the typer commands here exist for --help and completion, and delegate to the same functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

Shell = Literal["bash", "zsh", "fish"]

completions_app = typer.Typer(help="Tab completion for bash, zsh and fish.", no_args_is_help=True)


def shell_init(
    shell: Annotated[Shell | None, typer.Argument(help="bash, zsh or fish (default: from $SHELL).")] = None,
    install: Annotated[bool, typer.Option("--install", help="Add the hook to your shell's rc file, once.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Rewrite the cached hook, then print it.")] = False,
) -> None:
    """Print the shell hook that runs your agents through agentmeter: eval "$(agentmeter shell-init zsh)".

    It wraps the agents listed in config.toml as shell.agents (default claude, codex, cursor). Bypass it with
    `command claude` or AGENTMETER_DISABLE=1.
    """
    from ..hooks.shell import main

    raise SystemExit(main([a for a in (shell,) if a] + ["--install"] * install + ["--refresh"] * refresh))


def prompt(
    shell: Annotated[Literal["bash", "zsh", "plain"], typer.Option(
        help="Mark colour codes for this shell's line editor.")] = "plain",
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (for starship, which styles it).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A short budget segment for your prompt ($4.20/$20 21%), coloured by stage.

    Empty when there is no cap and nothing spent. See docs/shell.md for PS1, starship and p10k.
    """
    from ..commands.prompt import main

    raise SystemExit(main(["--shell", shell] + ["--no-color"] * no_color + ["--json"] * as_json))


def statusline(
    install: Annotated[bool, typer.Option("--install", help="Set it as Claude Code's statusLine.")] = False,
    force: Annotated[bool, typer.Option("--force", help="With --install: replace another statusLine.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour.")] = False,
) -> None:
    """Claude Code's status line: this session's cost, today's budget, and the official plan limits.

    Reads Claude Code's JSON on stdin. --install edits ~/.claude/settings.json (backed up, other settings kept).
    """
    from ..commands.statusline import main

    raise SystemExit(main(["--install"] * install + ["--force"] * force + ["--no-color"] * no_color))


@completions_app.command("generate")
def completions_generate(
    output: Annotated[Path, typer.Option(help="Directory to write agentmeter.bash, _agentmeter and "
                                              "agentmeter.fish into.")] = Path("completions"),
) -> None:
    """Write the completion scripts for every shell (the repository's completions/ folder)."""
    from .. import render
    from ..hooks import completions

    for path in completions.write(output):
        render.info(f"wrote {path}")


@completions_app.command("show")
def completions_show(shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print the completion script for one shell."""
    from .. import render
    from ..hooks import completions

    render.line(completions.GENERATORS[shell](completions.cli_tree()).rstrip("\n"))


@completions_app.command("install")
def completions_install(
    shell: Annotated[Shell | None, typer.Argument(help="bash, zsh or fish (default: from $SHELL).")] = None,
) -> None:
    """Install the completion script where your shell finds it."""
    from .. import render
    from ..hooks import completions
    from ..hooks.shell import detect_shell

    shell = shell or detect_shell()
    path = completions.install(shell)
    render.info(f"agentmeter: wrote {path}")
    if shell == "zsh":
        render.info(f"  add before compinit in ~/.zshrc, if it is not there: fpath=({path.parent} $fpath)")
    elif shell == "bash":
        render.info("  bash-completion loads it in new shells; without bash-completion: source " + str(path))

