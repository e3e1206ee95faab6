"""The typer application. Commands parse, call one core function, and hand the result to render."""

from __future__ import annotations

import typer

from . import config_cmd, keys, prices, proxy, sessions

app = typer.Typer(
    name="agentmeter",
    help="A meter and a brake for AI coding agents, on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold keys
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(proxy.app, name="proxy")
app.command("env")(proxy.env)
app.command("sessions")(sessions.sessions)
app.add_typer(sessions.session_app, name="session")
app.add_typer(prices.app, name="prices")
app.command("reprice")(prices.reprice)
app.add_typer(keys.app, name="keys")
app.add_typer(config_cmd.app, name="config")
