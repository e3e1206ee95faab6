"""The typer application. Commands parse, call one core function, and hand the result to render."""

from __future__ import annotations

import typer

from . import agents_cmd, budget, collector, config_cmd, keys, prices, proxy, report, run, sessions
from . import imports as imports_cmd
from . import shell as shell_cmd
from . import sync as sync_cmd

app = typer.Typer(
    name="agentmeter",
    help="A meter and a brake for AI coding agents, on your own machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # __main__ turns unexpected errors into one line (--debug for more)
    pretty_exceptions_show_locals=False,  # locals can hold keys
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                     "allow_interspersed_args": False})(run.run)
app.add_typer(proxy.app, name="proxy")
app.command("env")(proxy.env)
app.command("sessions")(sessions.sessions)
app.command("agents")(agents_cmd.agents)
app.add_typer(sessions.session_app, name="session")
app.add_typer(prices.app, name="prices")
app.command("reprice")(prices.reprice)
app.add_typer(keys.app, name="keys")
app.add_typer(config_cmd.app, name="config")
app.add_typer(budget.app, name="budget")
app.command("sync")(sync_cmd.sync)
app.add_typer(collector.app, name="collector")
app.command("report")(report.report)
app.command("export")(report.export)
app.add_typer(imports_cmd.import_app, name="import")
app.command("reconcile")(imports_cmd.reconcile)
app.command("shell-init")(shell_cmd.shell_init)
app.command("prompt")(shell_cmd.prompt)
app.command("statusline")(shell_cmd.statusline)
app.add_typer(shell_cmd.completions_app, name="completions")


@app.command("demo")
def demo(keep: bool = typer.Option(False, help="Keep the demo's throw-away home directory.")) -> None:
    """A complete tour with no agent, no key and no network: simulated provider, real daemon and ledger."""
    from ..demo import run_demo

    raise SystemExit(run_demo(keep=keep))


@app.command("doctor")
def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON."),
           repair: bool = typer.Option(False, "--repair", help="Rebuild a damaged ledger from its readable rows "
                                       "(the damaged file is kept).")) -> None:
    """Check the proxy, keys and keyring, agents on PATH, config, ledger integrity and the clock."""
    from .. import doctor as checks
    from .. import render

    results = checks.as_dicts(checks.run_checks(repair=repair))
    render.doctor(results, as_json)
    raise SystemExit(1 if any(c["status"] == "fail" for c in results) else 0)


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON."),
           watch: bool = typer.Option(False, "--watch", help="Full screen, refreshed as requests land.")) -> None:
    """Day, week and month against your caps, with the forecast; today's sessions; per-agent split."""
    if watch:
        raise SystemExit(_top())
    from ..__main__ import _status

    raise SystemExit(_status(as_json))


@app.command("top")
def top() -> None:
    """A live view: running sessions and their burn, today and the month against the caps, plan windows."""
    raise SystemExit(_top())


def _top() -> int:
    from types import SimpleNamespace

    from .. import live, render_live
    from ..clock import SystemClock
    from ..config import load_config
    from ..paths import get_paths

    paths, clock = get_paths(), SystemClock()
    view = SimpleNamespace(build=lambda: live.view(load_config, clock, paths.ledger),
                           changed=lambda: live.fingerprint(paths.ledger, paths.config_file))
    return render_live.run(view)
