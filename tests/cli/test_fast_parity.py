"""One parser per command: the seven commands that run without typer (cli/args.py) read every argv as the typer
command does. For each argv, the fast parser either builds the same typed arguments as typer's parsing of the
command, or gives up (None) and typer answers: its help, or its error for an unknown option, a bad choice,
a missing value. The argvs the fast path exists for must not give up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer.main

try:  # typer 0.29 carries its own click
    from typer._click.exceptions import UsageError as ClickUsageError
except ImportError:  # pragma: no cover - older typer
    from click import UsageError as ClickUsageError

from agentmeter.cli import args as a
from agentmeter.cli import fast
from agentmeter.cli.main import app
from agentmeter.cli.run import RAW_ARGS

ROOT = typer.main.get_command(app)

# What each typer command builds from what typer parsed (the bodies in cli/main.py, report.py, proxy.py, shell.py).
BUILT_BY_TYPER = {
    ("status",): lambda ctx: a.StatusArgs(**ctx.params),
    ("report",): lambda ctx: a.ReportArgs.of(**ctx.params),
    ("proxy", "serve"): lambda ctx: a.ServeArgs(**ctx.params),
    ("shell-init",): lambda ctx: a.ShellInitArgs(**ctx.params),
    ("prompt",): lambda ctx: a.PromptArgs(**ctx.params),
    ("statusline",): lambda ctx: a.StatuslineArgs(**ctx.params),
    ("run",): lambda ctx: a.parse_run(ctx.meta[RAW_ARGS]),
}
PARSERS = {path: parser for path, (parser, _run) in fast.FAST.items()}
PARSERS[("report",)] = a.parse_report  # the full parser; fast.machine_report only narrows what skips typer


class TyperSaid(Exception):
    """typer stopped before the command ran: help, or a usage error (the message a person sees)."""


def typer_args(path: tuple[str, ...], rest: list[str]):
    cmd = ROOT
    for name in path:
        cmd = cmd.commands[name]
    try:
        ctx = cmd.make_context(" ".join(path), list(rest))
    except typer.Exit as exc:  # --help
        raise TyperSaid("help") from exc
    except ClickUsageError as exc:
        raise TyperSaid(exc.format_message()) from exc
    return BUILT_BY_TYPER[path](ctx)


# (command path, argv after it, the fast path must take it)
CASES = [
    (("status",), [], True),
    (("status",), ["--json"], True),
    (("status",), ["--watch"], True),
    (("status",), ["--json", "--json"], True),
    (("status",), ["--jsn"], False),
    (("status",), ["now"], False),
    (("status",), ["--json=1"], False),
    (("status",), ["--help"], False),
    (("report",), ["--format", "json"], True),
    (("report",), ["--format=csv"], True),
    (("report",), ["--json"], True),
    (("report",), ["--json", "--format", "csv"], True),  # --json wins, whatever the order
    (("report",), ["--format", "csv", "--json"], True),
    (("report",), ["--by", "week", "--since", "2025-03-01", "--until=2025-04-01", "--tz", "UTC", "--json"], True),
    (("report",), ["--by=session", "--since", "", "--format", "json"], True),
    (("report",), ["--since", "7d", "--since", "2w", "--json"], True),  # the last one counts
    (("report",), ["--chart", "--no-chart", "--format", "csv"], True),
    (("report",), ["--html", "out.html"], True),
    (("report",), [], True),
    (("report",), ["--by", "decade", "--json"], False),
    (("report",), ["--format", "xml"], False),
    (("report",), ["--format"], False),
    (("report",), ["--since", "-3d", "--json"], False),  # click takes "-3d" as the value; typer words the rest
    (("report",), ["--json", "extra"], False),
    (("report",), ["--json", "-h"], False),
    (("report",), ["--by", "--help"], False),
    (("proxy", "serve"), [], True),
    (("proxy", "serve"), ["--port", "8790", "--quiet"], True),
    (("proxy", "serve"), ["--port=0", "--quiet", "--no-quiet"], True),
    (("proxy", "serve"), ["--port", "eighty"], False),
    (("proxy", "serve"), ["--port", "+80"], False),
    (("proxy", "serve"), ["--port", "²"], False),
    (("proxy", "serve"), ["--verbose"], False),
    (("shell-init",), [], True),
    (("shell-init",), ["zsh"], True),
    (("shell-init",), ["--install", "fish"], True),
    (("shell-init",), ["bash", "--refresh", "--install"], True),
    (("shell-init",), ["tcsh"], False),
    (("shell-init",), ["bash", "zsh"], False),
    (("shell-init",), ["bash", "--force"], False),
    (("prompt",), [], True),
    (("prompt",), ["--shell", "zsh", "--no-color"], True),
    (("prompt",), ["--shell=plain", "--json"], True),
    (("prompt",), ["--plan", "--shell", "bash"], True),
    (("prompt",), ["--shell", "tcsh"], False),
    (("prompt",), ["--shell"], False),
    (("prompt",), ["--colour"], False),
    (("statusline",), [], True),
    (("statusline",), ["--no-color"], True),
    (("statusline",), ["--install", "--force"], True),
    (("statusline",), ["--force", "x"], False),
    (("statusline",), ["--install=yes"], False),
]


@pytest.mark.parametrize(("path", "rest", "fast_takes_it"), CASES, ids=[" ".join(p + tuple(r)) for p, r, _ in CASES])
def test_fast_parser_builds_what_typer_builds_or_gives_up(path, rest, fast_takes_it):
    mine = PARSERS[path](list(rest))
    try:
        theirs = typer_args(path, rest)
    except TyperSaid:
        theirs = None
    if fast_takes_it:
        assert mine is not None, "the fast path gave up on an argv it exists for"
        assert type(mine) is type(theirs) and mine == theirs
    else:
        assert mine is None, f"the fast parser took {rest} (typer: {theirs}); typer must answer it"


def test_every_fast_command_has_cases():
    assert {p for p, _r, takes in CASES if takes} == set(fast.FAST) - {("run",)}  # run: RUN_CASES
    assert {p for p, _r, takes in CASES if not takes} >= set(fast.FAST) - {("run",)}


# --- run: one parser, whichever road -------------------------------------------------------------------------

RUN_CASES = [
    ["claude"],
    ["claude", "-p", "hi", "--model", "x"],
    ["--budget", "5", "--tag", "ticket=A-1", "-q", "codex", "exec", "hi"],
    ["--budget=2.5", "--no-downgrade", "claude"],
    ["claude", "--budget", "3", "-q", "--tag=a=b", "--no-downgrade", "--resume"],  # -q after the agent: the agent's
    ["claude", "--", "--budget", "3"],  # after the agent's --, nothing is agentmeter's
    ["--", "make", "test"],
    ["--quiet", "--", "claude", "--budget", "3"],  # a plain command named claude
    ["--unmetered-on-error", "claude"],
]


@pytest.mark.parametrize("rest", RUN_CASES, ids=[" ".join(r) for r in RUN_CASES])
def test_run_reads_the_same_through_typer(rest):
    theirs = typer_args(("run",), rest)
    assert type(theirs) is a.RunArgs and theirs == a.parse_run(rest)


def test_run_parse():
    assert a.parse_run(["--budget", "5", "--tag", "t=1", "-q", "codex", "exec", "-q", "--tag", "u=2"]) == a.RunArgs(
        "codex", ("exec", "-q"), 5.0, {"t": "1", "u": "2"}, True, False
    )
    assert a.parse_run(["claude", "--", "--budget", "3"]) == a.RunArgs("claude", ("--", "--budget", "3"))
    assert a.parse_run(["--", "make", "--budget", "3"]) == a.RunArgs(None, ("make", "--budget", "3"))
    assert a.parse_run(["claude", "--no-downgrade"]).tags == {"no_downgrade": "1"}


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        ([], "nothing to run"),
        (["--"], "no command after --"),
        (["--budget"], "--budget needs a value"),
        (["claude", "--tag"], "--tag needs a value"),
        (["--budget", "five", "claude"], "is not a number"),
        (["claude", "--budget=0"], "above 0"),
        (["--tag", "novalue", "claude"], "bad tag"),
        (["--model", "x", "claude"], "unknown option --model"),
        (["--budgetx", "claude"], "unknown option --budgetx"),
    ],
)
def test_run_errors_are_agentmeters_own(rest, message):
    from agentmeter.core.errors import UsageError

    with pytest.raises(UsageError, match=message):
        a.parse_run(rest)


def test_run_help_goes_to_typer_and_the_agents_help_to_the_agent():
    assert fast.parse(["run", "--help"]) is None
    assert fast.parse(["run", "claude", "--help"]) == (("run",), a.RunArgs("claude", ("--help",)))
    assert fast.parse(["report", "--json", "--help"]) is None


def test_fast_report_is_for_machine_formats_only():
    assert fast.parse(["report", "--json"]) is not None
    assert fast.parse(["report", "--format", "csv", "--by", "agent"]) is not None
    for rest in ([], ["--format", "table"], ["--json", "--chart"], ["--json", "--html", "x.html"]):
        assert fast.parse(["report", *rest]) is None, rest


def test_run_called_in_process_keeps_its_options(monkeypatch):
    """typer's `run`, called in-process with another process argv (here `python -c`), used to re-read
    sys.argv: `--`, --budget and --tag were lost. It reads the arguments it was given."""
    monkeypatch.setenv("AGENTMETER_PORT", "0")  # any free port: the machine may run other proxies
    code = (
        "import sys\nfrom agentmeter.cli.main import app\n"
        "app(['run', '--quiet', '--budget', '5', '--tag', 'ticket=A-1', '--', sys.executable, '-c', 'pass'], "
        "prog_name='agentmeter')\n"
    )
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        got = subprocess.run(
            [sys.executable, "-m", "agentmeter", "sessions", "--json"], capture_output=True, text=True, timeout=60
        )
        sessions = json.loads(got.stdout)["sessions"]
        assert [(s["agent"], s["tags"]) for s in sessions] == [("other", {"ticket": "A-1"})], sessions
    finally:
        subprocess.run([sys.executable, "-m", "agentmeter", "proxy", "stop"], capture_output=True, timeout=60)


# --- the fast paths stay light, and the modules form no cycle ---------------------------------------------


def test_fast_modules_import_without_typer():
    code = (
        "import sys\nimport agentmeter.cli, agentmeter.cli.args, agentmeter.cli.fast\n"
        "print([m for m in ('typer', 'click', 'rich', 'agentmeter.cli.main') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_completions_are_generated_from_the_typer_tree():
    from agentmeter.cli.shell import cli_tree

    cmds = {c.path: c for c in cli_tree(ROOT)}
    by = next(o for o in cmds["report"].options if "--by" in o.names)
    assert by.value.choices == a.report_by()
    assert any("--plan" in o.names for o in cmds["prompt"].options)


def test_report_by_choices_have_one_home():
    from agentmeter.cli.report import By
    from agentmeter.ledger.reports import GROUPS

    assert tuple(b.value for b in By) == a.report_by() == tuple(GROUPS)
    for by in a.report_by():
        assert by in (app.registered_commands and typer.main.get_command(app).commands["report"].help)
