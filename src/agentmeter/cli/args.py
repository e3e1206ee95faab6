"""Typed arguments of the seven commands with a fast path, and the hand-written parsers that build them.

`status`, `report`, `proxy serve`, `run`, `shell-init`, `prompt` and `statusline` run on every shell start,
prompt render, agent launch or script call, where importing typer (with click and rich) costs ten times the
work itself (benchmarks/launch_overhead.py, shell_startup.py, status_scale.py). So `cli.fast` parses them
here first; the typer commands in `cli.main` build the same objects from what typer parsed (`XArgs(**params)`:
field names are the typer parameters' names; `ReportArgs.of` also turns typer's enums into plain strings),
and tests/cli/test_fast_parity.py runs the same argv through both.

Named tuples, not dataclasses: the `@dataclass` decorator generates and compiles its methods at import, which
cost about 1 ms per class here (measured: 8 frozen dataclasses 14 ms, 8 named tuples 0.6 ms, on the shared
machine) on paths whose whole budget is a few tens of milliseconds. They are as immutable and compare by value.

A parser returns None for anything it does not take as the typer command would (help, an unknown option, a
bad choice, a missing value): typer then parses it and words the error. `run` is the exception: everything
after the agent belongs to the agent and `--` starts a plain command, which click cannot tell apart, so
`parse_run` is its only parser and the typer command hands it the raw arguments.

Standard library and `core.errors` / `core.parsing` only: this module is on every fast path.
Not argparse either: importing it and building a parser costs 5-8 ms (gettext looks for translation files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from ..core.errors import UsageError

SHELLS = ("bash", "zsh", "fish")
PROMPT_SHELLS = ("bash", "zsh", "plain")
REPORT_FORMATS = ("table", "json", "csv")
HELP = frozenset({"-h", "--help"})


def _plain(value: Any) -> Any:
    """typer hands enums (By.day) where the fast parser has strings ("day")."""
    return getattr(value, "value", value)


# --- the option walker shared by the parsers below ----------------------------------------------------------


def _options(
    argv: list[str], flags: dict[str, tuple[str, bool]], valued: tuple[str, ...], positionals: int = 0
) -> tuple[dict[str, Any], list[str]] | None:
    """click's reading of `argv` for a command with these options, or None where the parser gives up.

    `flags` maps `--name` to (field, value it sets); `valued` lists `--name` options taking one value, as
    `--name V` or `--name=V` (field: the name without dashes). Up to `positionals` bare words are returned
    in order. A value that starts with `-`, a `--`, help, or anything unknown: None (typer decides)."""
    seen: dict[str, Any] = {}
    words: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a in flags:
            name, value = flags[a]
            seen[name] = value
            continue
        name, eq, value = a.partition("=")
        if name in valued:
            if not eq:
                if i >= len(argv) or argv[i].startswith("-"):
                    return None
                value, i = argv[i], i + 1
            seen[name[2:]] = value
        elif a.startswith("-") or len(words) >= positionals:
            return None
        else:
            words.append(a)
    return seen, words


# --- status -------------------------------------------------------------------------------------------------


class StatusArgs(NamedTuple):
    as_json: bool = False
    watch: bool = False


def parse_status(argv: list[str]) -> StatusArgs | None:
    got = _options(argv, {"--json": ("as_json", True), "--watch": ("watch", True)}, ())
    return None if got is None else StatusArgs(**got[0])


# --- report -------------------------------------------------------------------------------------------------


class ReportArgs(NamedTuple):
    by: str = "day"
    since: str | None = "30d"
    until: str | None = None
    tz: str | None = None
    fmt: str = "table"
    chart: bool = False
    html: Path | None = None
    as_json: bool = False
    commits: str | None = None  # A..B: only sessions that ended on a commit of this git range

    @classmethod
    def of(cls, *, by: Any = "day", fmt: Any = "table", html: Any = None, **rest: Any) -> ReportArgs:
        """From typer's parameters: its enums (By.day) as plain strings, a path as a Path."""
        return cls(by=_plain(by), fmt=_plain(fmt), html=None if html is None else Path(html), **rest)

    @property
    def output(self) -> str:
        """What is printed: --json wins over --format, as its help says."""
        return "json" if self.as_json else self.fmt


def report_by() -> tuple[str, ...]:
    """`report --by` choices: the groupings the ledger's report SQL has (one list, in ledger/reports.py)."""
    from ..ledger.reports import GROUPS

    return tuple(GROUPS)


def parse_report(argv: list[str]) -> ReportArgs | None:
    got = _options(
        argv,
        {"--json": ("as_json", True), "--chart": ("chart", True), "--no-chart": ("chart", False)},
        ("--by", "--since", "--until", "--tz", "--format", "--html", "--commits"),
    )
    if got is None:
        return None
    seen = got[0]
    if "format" in seen:
        seen["fmt"] = seen.pop("format")
    if (
        seen.get("fmt", "table") not in REPORT_FORMATS
        or seen.get("by", "day") not in report_by()
        or seen.get("by") == "tag"
        or seen.get("html") == ""
    ):
        return None
    return ReportArgs.of(**seen)


# --- proxy serve --------------------------------------------------------------------------------------------


class ServeArgs(NamedTuple):
    port: int | None = None
    quiet: bool = False


def parse_serve(argv: list[str]) -> ServeArgs | None:
    got = _options(argv, {"--quiet": ("quiet", True), "--no-quiet": ("quiet", False)}, ("--port",))
    if got is None:
        return None
    seen = got[0]
    if "port" in seen:
        if not (seen["port"].isascii() and seen["port"].isdigit()):
            return None  # click's int() also takes "+5", " 5", "5_0": typer answers those
        seen["port"] = int(seen["port"])
    return ServeArgs(**seen)


# --- shell-init, prompt, statusline -------------------------------------------------------------------------


class ShellInitArgs(NamedTuple):
    shell: str | None = None  # None: from $SHELL
    install: bool = False
    refresh: bool = False


def parse_shell_init(argv: list[str]) -> ShellInitArgs | None:
    got = _options(argv, {"--install": ("install", True), "--refresh": ("refresh", True)}, (), positionals=1)
    if got is None or not set(got[1]) <= set(SHELLS):
        return None
    return ShellInitArgs(shell=got[1][0] if got[1] else None, **got[0])


class PromptArgs(NamedTuple):
    shell: str = "plain"  # bash and zsh mark colour codes for their line editors
    no_color: bool = False
    as_json: bool = False
    plan: bool = False


def parse_prompt(argv: list[str]) -> PromptArgs | None:
    got = _options(
        argv, {"--no-color": ("no_color", True), "--json": ("as_json", True), "--plan": ("plan", True)}, ("--shell",)
    )
    if got is None or got[0].get("shell", "plain") not in PROMPT_SHELLS:
        return None
    return PromptArgs(**got[0])


class StatuslineArgs(NamedTuple):
    install: bool = False
    force: bool = False
    no_color: bool = False


def parse_statusline(argv: list[str]) -> StatuslineArgs | None:
    got = _options(
        argv, {"--install": ("install", True), "--force": ("force", True), "--no-color": ("no_color", True)}, ()
    )
    return None if got is None else StatuslineArgs(**got[0])


# --- run ----------------------------------------------------------------------------------------------------


class RunArgs(NamedTuple):
    """`run [OPTIONS] AGENT [ARGS…]` or `run [OPTIONS] -- CMD [ARGS…]` (then `agent` is None)."""

    agent: str | None = None
    args: tuple[str, ...] = ()
    budget_usd: float | None = None
    tags: dict[str, str] = {}  # shared default, read only: run_run hands launch a copy
    quiet: bool = False
    unmetered_on_error: bool = False


# agentmeter's options that may also follow the agent name (`run claude --budget 5 -p hi`): none of the
# agents defines them (checked against the --help of Claude Code, Codex, Gemini CLI, Copilot CLI, OpenCode
# and Qwen Code), so they cannot be meant for the agent. `-q/--quiet` stays the agent's: several agents
# have a quiet flag of their own. Nothing after a `--` is looked at.
AFTER_AGENT_VALUED = ("--budget", "--tag")
AFTER_AGENT_FLAGS = ("--no-downgrade",)


def parse_run(argv: list[str]) -> RunArgs:
    """The one parser of `run`: raises UsageError with agentmeter's own wording (typer never sees the agent's
    arguments, so it cannot word them)."""
    from ..core.parsing import parse_tags

    agent: str | None = None
    args: list[str] = []
    budget: float | None = None
    tags: list[str] = []
    quiet = unmetered = False
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        name, eq, value = a.partition("=")
        if a == "--":
            if agent is not None:
                args.extend(argv[i - 1 :])  # the agent's own `--`, and all after it
            elif not (args := argv[i:]):
                raise UsageError("no command after --", "agentmeter run -- CMD [ARGS]")
            break
        if name in AFTER_AGENT_VALUED:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"{name} needs a value", "e.g. --budget 5 or --tag ticket=ABC-1")
                value, i = argv[i], i + 1
            if name == "--budget":
                budget = _budget(value)
            else:
                tags.append(value)
        elif a in AFTER_AGENT_FLAGS:
            tags.append("no_downgrade=1")
        elif agent is not None:
            args.append(a)
        elif a in ("--quiet", "-q"):
            quiet = True
        elif a == "--unmetered-on-error":
            unmetered = True
        elif a.startswith(("--budget", "--tag")):
            raise UsageError(f"unknown option {a}", "see: agentmeter run --help")
        elif a.startswith("-"):
            raise UsageError(f"unknown option {a}", "options go before the agent: agentmeter run --budget 5 claude …")
        else:
            agent = a
    if agent is None and not args:
        raise UsageError("nothing to run", "agentmeter run claude, or agentmeter run -- CMD [ARGS]")
    return RunArgs(agent, tuple(args), budget, parse_tags(tags), quiet, unmetered)


def _budget(value: str) -> float:
    try:
        usd = float(value)
    except ValueError:
        raise UsageError(f"--budget {value!r} is not a number", "e.g. --budget 5 (USD)") from None
    if not 0 < usd < float("inf"):
        raise UsageError("--budget must be above 0", "e.g. --budget 5 (USD)")
    return usd
