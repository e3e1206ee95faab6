"""The typer application. Commands parse, call one core function, and hand the result to render."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import render
from ..render import doctor as render_doctor
from . import agents_cmd, audit, budget, collector, config_cmd, fast, keys, prices, proxy, report, run, sessions
from . import imports as imports_cmd
from . import shell as shell_cmd
from . import sync as sync_cmd
from .args import StatusArgs

# Lines end with two spaces and a newline: typer's markdown-free rich help keeps them as lines.
ENVIRONMENT = "  \n".join(
    [
        "[b]Environment[/b]",
        "AGENTMETER_HOME: one directory for config, ledger and runtime files",
        "AGENTMETER_PORT: the proxy's port (overrides \\[proxy] port)",
        "AGENTMETER_UPSTREAM_ANTHROPIC, _OPENAI, _CHATGPT: upstream URLs",
        "AGENTMETER_ANTHROPIC_API_KEY, AGENTMETER_OPENAI_API_KEY: keys, not the keyring",
        "AGENTMETER_COLLECTOR_URL, AGENTMETER_COLLECTOR_TOKEN: the team collector",
        "AGENTMETER_DISABLE=1: shell hooks start agents unmetered",
        "AGENTMETER_DEBUG=1: the same as --debug;  NO_COLOR: no colour anywhere",
    ]
)


def _plain_metavar(self, ctx):
    """Help shows `--since TEXT`-style names, not typer's `<bool>`/`<str>` type labels: flags get none."""
    if self.metavar is not None:
        return self.metavar
    if getattr(self, "is_flag", False):
        return None
    label = _typer_display_type(self, ctx)
    if label in ("<str>", "<int>", "<float>", "<Path>", "<path>", "<file>"):
        return {"<int>": "N", "<float>": "NUMBER"}.get(
            label, self.name.upper().replace("_", "-") if label == "<str>" else "PATH"
        )
    return label


def _plain_argument(self, ctx):
    """An argument already shows its name (SESSION_ID): no type label beside it."""
    label = _typer_argument_type(self, ctx)
    return None if label in ("<str>", "<int>", "<float>", "<Path>", "<path>") else label


# display_type_rich is typer 0.29's; on older typer (allowed down to 0.19) help keeps typer's own labels.
if hasattr(typer.core.TyperOption, "display_type_rich"):
    _typer_display_type = typer.core.TyperOption.display_type_rich
    typer.core.TyperOption.display_type_rich = _plain_metavar  # type: ignore[method-assign]
    _typer_argument_type = typer.core.TyperArgument.display_type_rich
    typer.core.TyperArgument.display_type_rich = _plain_argument  # type: ignore[method-assign]

# Commands grouped by task in --help (rich_help_panel).
METER = CAPS = "Run, watch and cap"
REPORTS, TEAM, SETUP = "Reports and data", "Team", "Set-up and checks"

app = typer.Typer(
    name="agentmeter",
    help="A meter and a brake for AI coding agents, on your own machine.",
    epilog=ENVIRONMENT,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # __main__ turns unexpected errors into one line (--debug for more)
    pretty_exceptions_show_locals=False,  # locals can hold keys
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        render.line(f"agentmeter {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="On an internal error, show the traceback "
            "(also AGENTMETER_DEBUG=1). Works before or after the command.",
        ),
    ] = False,
) -> None:
    """A meter and a brake for AI coding agents, on your own machine."""


app.command(
    "run",
    cls=run.RawArgsCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False},
    rich_help_panel=METER,
)(run.run)
app.command("sessions", rich_help_panel=METER)(sessions.sessions)
app.command("agents", rich_help_panel=SETUP)(agents_cmd.agents)
app.add_typer(sessions.session_app, name="session", rich_help_panel=METER)
app.add_typer(proxy.app, name="proxy", rich_help_panel=METER)
app.command("env", rich_help_panel=METER)(proxy.env)
app.add_typer(budget.app, name="budget", rich_help_panel=CAPS)
app.command("audit", rich_help_panel=CAPS)(audit.audit)
app.command("report", rich_help_panel=REPORTS)(report.report)
app.command("export", rich_help_panel=REPORTS)(report.export)
app.add_typer(prices.app, name="prices", rich_help_panel=REPORTS)
app.command("reprice", rich_help_panel=REPORTS)(prices.reprice)
app.add_typer(imports_cmd.import_app, name="import", rich_help_panel=REPORTS)
app.command("reconcile", rich_help_panel=REPORTS)(imports_cmd.reconcile)
app.command("sync", rich_help_panel=TEAM)(sync_cmd.sync)
app.add_typer(collector.app, name="collector", rich_help_panel=TEAM)
app.add_typer(keys.app, name="keys", rich_help_panel=SETUP)
app.add_typer(config_cmd.app, name="config", rich_help_panel=SETUP)
app.command("shell-init", rich_help_panel=SETUP)(shell_cmd.shell_init)
app.command("prompt", rich_help_panel=SETUP)(shell_cmd.prompt)
app.command("statusline", rich_help_panel=SETUP)(shell_cmd.statusline)
app.add_typer(shell_cmd.completions_app, name="completions", rich_help_panel=SETUP)


@app.command("version", rich_help_panel=SETUP)
def version(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The version of agentmeter, and the Python it runs on."""
    import platform

    from .. import __version__

    payload = {"version": __version__, "python": platform.python_version(), "platform": sys.platform}
    if as_json:
        render.emit_json("version", payload)
    else:
        render.line(f"agentmeter {__version__} (Python {payload['python']}, {sys.platform})")


@app.command("demo", rich_help_panel=METER)
def demo(keep: bool = typer.Option(False, help="Keep the demo's throw-away home directory.")) -> None:
    """A complete tour with no agent, no key and no network: simulated provider, real daemon and ledger."""
    from ..commands.demo import run_demo

    raise SystemExit(run_demo(keep=keep))


@app.command("doctor", rich_help_panel=SETUP)
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    repair: bool = typer.Option(
        False, "--repair", help="Rebuild a damaged ledger from its readable rows (the damaged file is kept)."
    ),
) -> None:
    """Check the proxy, keys and keyring, agents on PATH, config, ledger integrity and the clock."""
    from ..commands import doctor as checks

    results = checks.as_dicts(checks.run_checks(repair=repair))
    render_doctor.doctor(results, as_json)
    raise SystemExit(1 if any(c["status"] == "fail" for c in results) else 0)


@app.command("status", rich_help_panel=METER)
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    watch: bool = typer.Option(False, "--watch", help="Full screen, refreshed as requests land."),
) -> None:
    """Day, week and month against your caps, with the forecast; today's sessions; per-agent split."""
    raise SystemExit(fast.run_status(StatusArgs(**ctx.params)))


@app.command("top", rich_help_panel=METER)
def top() -> None:
    """A live view: running sessions and their burn, today and the month against the caps, plan windows."""
    raise SystemExit(fast.run_top())
