"""config.toml → a frozen Config. Errors name the file, the line and the key.

Reading uses tomllib; a key the parser never asked for is an error with a "did you mean" (a typo such as
`dialy_usd` would otherwise silently remove a cap). Writing goes through tomlkit, so the user's comments
and layout survive `budget set`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError

if TYPE_CHECKING:
    from ..core.models import PriceRate

DEFAULT_UPSTREAMS = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com",
    "chatgpt": "https://chatgpt.com/backend-api/codex",
    "gemini": "https://generativelanguage.googleapis.com",
}
DEFAULT_PORT = 8788


@dataclass(frozen=True)
class Identity:
    developer: str | None = None
    team: str | None = None
    cost_center: str | None = None


@dataclass(frozen=True)
class Caps:
    daily_usd: float | None = None
    weekly_usd: float | None = None
    monthly_usd: float | None = None
    daily_tokens: int | None = None
    weekly_tokens: int | None = None
    monthly_tokens: int | None = None


@dataclass(frozen=True)
class Budget:
    timezone: str = "local"
    caps: Caps = field(default_factory=Caps)
    alert_at: float = 0.80
    downgrade_at: float = 0.95
    block_at: float = 1.10
    easy_turn_tokens: int = 10000
    retry_cap: int = 3
    enforce_subscription: bool = False
    agents: dict[str, Caps] = field(default_factory=dict)
    pinned: tuple[str, ...] = ()  # models never downgraded
    # Subscription plan windows: the line (a fraction of the provider's window) where the refusal starts,
    # from [budget.plan] (five_hour, seven_day) and per agent from [budget.agents.NAME.plan].
    plan: dict[str, float] = field(default_factory=dict)
    agent_plan: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Alerts:
    desktop: bool = True
    webhook: str = ""


@dataclass(frozen=True)
class Sync:
    collector: str = ""
    otlp_endpoint: str = ""
    interval_seconds: int = 300
    # OpenTelemetry export (sync/otel.py): which GenAI semantic-convention names, and which high-cardinality
    # attributes (developer, repo) to add; both off unless configured.
    otel_semconv: str = "current"
    otel_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Proxy:
    port: int = DEFAULT_PORT


@dataclass(frozen=True)
class Config:
    identity: Identity = field(default_factory=Identity)
    budget: Budget = field(default_factory=Budget)
    cascade: dict[str, tuple[str, ...]] = field(default_factory=dict)
    alerts: Alerts = field(default_factory=Alerts)
    prices: dict[str, PriceRate] = field(default_factory=dict)
    unknown_model_price: PriceRate | None = None
    upstreams: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_UPSTREAMS))
    sync: Sync = field(default_factory=Sync)
    proxy: Proxy = field(default_factory=Proxy)
    agents: tuple[str, ...] = ("claude", "codex", "cursor")
    source: Path | None = None

    def upstream(self, name: str) -> str:
        """Environment first (AGENTMETER_UPSTREAM_<NAME>), then config, then the public API."""
        env = os.environ.get(f"AGENTMETER_UPSTREAM_{name.upper()}")
        return (env or self.upstreams.get(name) or DEFAULT_UPSTREAMS[name]).rstrip("/")

    def port(self) -> int:
        env = os.environ.get("AGENTMETER_PORT")
        if env is not None and env.strip() != "":
            try:
                port = int(env)
            except ValueError:
                raise ConfigError(
                    f"AGENTMETER_PORT={env!r} is not a port number", "use a number from 0 to 65535"
                ) from None
            if not 0 <= port <= 65535:
                raise ConfigError(f"AGENTMETER_PORT={port} is out of range", "use 0 to 65535")
            return port
        return self.proxy.port


class _Seen(dict):
    """A parsed TOML table that remembers which keys the parser asked about, present or not.

    The known keys are whatever parse_config reads, so a key added to the parser is known here without a
    second list to keep in step."""

    def __init__(self, data: dict) -> None:
        super().__init__({k: _Seen(v) if isinstance(v, dict) else v for k, v in data.items()})
        self.asked: set[str] = set()

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def items(self):  # iterating a table (prices, cascade) accepts all of its keys
        self.asked.update(self.keys())
        return super().items()

    def unread(self, prefix: tuple[str, ...] = ()):
        """(path, key, candidates) for each key nobody asked for, depth first, in file order."""
        for key, value in dict.items(self):
            if key not in self.asked:
                yield prefix, key, sorted(self.asked)
            elif isinstance(value, _Seen):
                yield from value.unread((*prefix, key))


class _Reader:
    """Pulls typed values out of the parsed TOML, remembering where each key came from."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, section: str, key: str | None) -> int | None:
        header = re.compile(r"^\s*\[\s*" + re.escape(section).replace(r"\"", '"?') + r"\s*\]\s*(#.*)?$")
        in_section = section == ""
        for i, line in enumerate(self.lines, 1):
            stripped = line.strip()
            if stripped.startswith("["):
                in_section = bool(header.match(line.replace('"', "")) or header.match(line))
                if in_section and key is None:
                    return i
                continue
            if in_section and key and re.match(r"^\s*\"?" + re.escape(key) + r"\"?\s*=", line):
                return i
        return None

    def fail(self, section: str, key: str | None, problem: str, hint: str) -> ConfigError:
        line = self.line_of(section, key)
        if line is None and key is not None:  # a table: its own [header]
            line = self.line_of(".".join(p for p in (section, key) if p), None)
        where = f"{self.path}" + (f", line {line}" if line else "")
        name = ".".join(p for p in (section, key) if p)
        return ConfigError(f"{where}: {name}: {problem}", hint)

    def table(self, data: dict, section: str, name: str) -> dict:
        value = data.get(name, {})
        if not isinstance(value, dict):
            full = f"{section}.{name}" if section else name
            raise self.fail(section, name, "must be a table", f"write it as [{full}]")
        return value

    def number(self, table: dict, section: str, key: str, *, integer: bool = False, lo=None, hi=None):
        if key not in table:
            return None
        value = table[key]
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value != value:  # value != value: NaN, which compares false
            kind = "a whole number" if integer else "a number"
            raise self.fail(section, key, f"must be {kind}, got {value!r}", f"for example {key} = 10")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(section, key, f"{value} is out of range", f"use a value from {lo} to {hi}")
        return value

    def string(self, table: dict, section: str, key: str) -> str | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str):
            raise self.fail(section, key, f"must be a string, got {value!r}", f'for example {key} = "…"')
        return value

    def boolean(self, table: dict, section: str, key: str) -> bool | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, bool):
            raise self.fail(section, key, f"must be true or false, got {value!r}", f"{key} = true")
        return value

    def caps(self, table: dict, section: str) -> Caps:
        kw = {}
        for key in ("daily_usd", "weekly_usd", "monthly_usd"):
            kw[key] = self.number(table, section, key, lo=0)
        for key in ("daily_tokens", "weekly_tokens", "monthly_tokens"):
            kw[key] = self.number(table, section, key, integer=True, lo=0)
        return Caps(**kw)

    def rate(self, table: Any, section: str) -> PriceRate:
        if not isinstance(table, dict):
            raise self.fail(section, None, "must be a table", "e.g. input = 3.0 and output = 15.0")
        for key in ("input", "output"):
            if key not in table:
                raise self.fail(section, None, f"missing {key}", f"add {key} = <USD per million tokens>")
        values = {
            k: self.number(table, section, k, lo=0)
            for k in ("input", "output", "cache_read", "cache_write", "cache_write_1h")
        }
        from ..core.models import PriceRate  # only a config with [prices] pays for building models' dataclasses

        return PriceRate(**values)


def load_config(path: Path | None = None) -> Config:
    from .paths import get_paths

    path = path or get_paths().config_file
    if not path.exists():
        return Config(source=None)
    import tomllib  # only with a file to read: `status` and `report` in a home without one skip it

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 ({exc.reason})", "save the file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", "fix the TOML syntax at that line") from None
    return parse_config(data, path, text)


def parse_config(data: dict, path: Path, text: str = "") -> Config:
    data = _Seen(data)
    config = _parse(data, path, text)
    _refuse_unknown(data, _Reader(path, text))
    return config


def _refuse_unknown(data: _Seen, r: _Reader) -> None:
    import difflib

    for prefix, key, known in data.unread():
        section = ".".join(prefix)
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        where = f"[{section}]" if section else "the top level"
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else f"known in {where}: {', '.join(known)}"
            if known
            else f"nothing is read from {where}; remove it"
        )
        table = data
        for part in prefix:
            table = dict.__getitem__(table, part)
        kind = "section" if isinstance(dict.__getitem__(table, key), dict) else "key"
        raise r.fail(section, key, f"unknown {kind}", hint)


def _parse(data: dict, path: Path, text: str) -> Config:
    r = _Reader(path, text)
    ident = r.table(data, "", "identity")
    budget = r.table(data, "", "budget")
    alerts = r.table(data, "", "alerts")
    sync = r.table(data, "", "sync")
    proxy = r.table(data, "", "proxy")
    upstreams = r.table(data, "", "upstreams")
    cascade = r.table(data, "", "cascade")
    prices = r.table(data, "", "prices")
    shell = r.table(data, "", "shell")

    agent_caps, agent_plan = {}, {}
    for name, table in r.table(budget, "budget", "agents").items():
        if not isinstance(table, dict):
            raise r.fail(f"budget.agents.{name}", None, "must be a table", f"write it as [budget.agents.{name}]")
        agent_caps[name] = r.caps(table, f"budget.agents.{name}")
        if "plan" in table:
            agent_plan[name] = _plan_lines(r, table, f"budget.agents.{name}")

    def num(key, default, **kw):
        value = r.number(budget, "budget", key, **kw)
        return default if value is None else value

    alert_at = num("alert_at", 0.80, lo=0, hi=10)
    downgrade_at = num("downgrade_at", 0.95, lo=0, hi=10)
    block_at = num("block_at", 1.10, lo=0, hi=10)
    if not alert_at <= block_at:
        raise r.fail(
            "budget",
            "alert_at",
            f"alert_at ({alert_at}) is above block_at ({block_at})",
            "alerts come first: keep alert_at <= downgrade_at <= block_at",
        )
    b = Budget(
        timezone=r.string(budget, "budget", "timezone") or "local",
        caps=r.caps(budget, "budget"),
        alert_at=alert_at,
        downgrade_at=downgrade_at,
        block_at=block_at,
        easy_turn_tokens=num("easy_turn_tokens", 10000, integer=True, lo=0),
        retry_cap=num("retry_cap", 3, integer=True, lo=0),
        enforce_subscription=bool(r.boolean(budget, "budget", "enforce_subscription")),
        agents=agent_caps,
        pinned=_string_list(r, budget, "budget", "pinned"),
        plan=_plan_lines(r, budget, "budget"),
        agent_plan=agent_plan,
    )
    _check_timezone(r, b.timezone)

    ladders = {}
    for provider, ladder in cascade.items():
        if not (isinstance(ladder, list) and all(isinstance(m, str) for m in ladder)):
            raise r.fail(
                "cascade", provider, "must be a list of model names", f'{provider} = ["most-expensive", "cheaper"]'
            )
        ladders[provider] = tuple(ladder)

    rates, unknown = {}, None
    for key, table in prices.items():
        if key == "unknown_model":
            unknown = r.rate(table, "prices.unknown_model")
            continue
        if ":" not in key:
            raise r.fail(
                f'prices."{key}"', None, "price keys are provider:model", '[prices."anthropic:claude-opus-4-8"]'
            )
        rates[key] = r.rate(table, f'prices."{key}"')

    ups = dict(DEFAULT_UPSTREAMS)
    for name in DEFAULT_UPSTREAMS:
        upstreams.get(name)  # the known names; any other is a typo (see _refuse_unknown)
    for name, url in dict.items(upstreams):
        if name not in DEFAULT_UPSTREAMS:
            continue
        value = r.string(upstreams, "upstreams", name)
        if not value or not re.match(r"^https?://", value):
            raise r.fail("upstreams", name, f"{url!r} is not an http(s) URL", f'{name} = "https://…"')
        ups[name] = value

    agents = shell.get("agents", ["claude", "codex", "cursor"])
    if not (isinstance(agents, list) and all(isinstance(a, str) for a in agents)):
        raise r.fail("shell", "agents", "must be a list of agent names", 'agents = ["claude", "codex"]')

    return Config(
        identity=Identity(
            developer=r.string(ident, "identity", "developer"),
            team=r.string(ident, "identity", "team"),
            cost_center=r.string(ident, "identity", "cost_center"),
        ),
        budget=b,
        cascade=ladders,
        alerts=Alerts(
            desktop=r.boolean(alerts, "alerts", "desktop") is not False,
            webhook=r.string(alerts, "alerts", "webhook") or "",
        ),
        prices=rates,
        unknown_model_price=unknown,
        upstreams=ups,
        sync=Sync(
            collector=r.string(sync, "sync", "collector") or "",
            otlp_endpoint=r.string(sync, "sync", "otlp_endpoint") or "",
            interval_seconds=r.number(sync, "sync", "interval_seconds", integer=True, lo=10) or 300,
            otel_semconv=_one_of(r, sync, "sync", "otel_semconv", OTEL_SEMCONV) or "current",
            otel_attributes=_subset(r, sync, "sync", "otel_attributes", OTEL_ATTRIBUTES),
        ),
        proxy=Proxy(port=r.number(proxy, "proxy", "port", integer=True, lo=0, hi=65535) or DEFAULT_PORT),
        agents=tuple(agents),
        source=path,
    )


PLAN_KEYS = ("five_hour", "seven_day")
# [sync] otel_semconv: "current" GenAI metric names, the "legacy" gen_ai.client.token.usage histogram, or "both"
# while dashboards move; otel_attributes: the per-developer/per-repo attributes a team may opt into.
OTEL_SEMCONV = ("current", "legacy", "both")
OTEL_ATTRIBUTES = ("developer", "repo")


def _one_of(r: _Reader, table: dict, section: str, key: str, choices: tuple[str, ...]) -> str | None:
    value = r.string(table, section, key)
    if value is not None and value not in choices:
        raise r.fail(section, key, f"unknown value {value!r}", f"use one of: {', '.join(choices)}")
    return value


def _subset(r: _Reader, table: dict, section: str, key: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    values = _string_list(r, table, section, key)
    for v in values:
        if v not in choices:
            raise r.fail(section, key, f"unknown value {v!r}", f"choose from: {', '.join(choices)}")
    return tuple(dict.fromkeys(values))


def _plan_lines(r: _Reader, parent: dict, section: str) -> dict[str, float]:
    """[<section>.plan]: five_hour / seven_day as fractions of the provider's window (0.9 keeps 10 %)."""
    table = r.table(parent, section, "plan")
    where = f"{section}.plan"
    for key in table:
        if key not in PLAN_KEYS:
            raise r.fail(
                where,
                key,
                f"unknown plan window {key!r}",
                f"use {' or '.join(PLAN_KEYS)}, as a fraction: five_hour = 0.9",
            )
    out = {}
    for key in PLAN_KEYS:
        value = r.number(table, where, key, lo=0, hi=1)
        if value is not None:
            out[key] = float(value)
    return out


def _string_list(r: _Reader, table: dict, section: str, key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise r.fail(section, key, "must be a list of strings", f'{key} = ["claude-opus-4-8"]')
    return tuple(value)


def _check_timezone(r: _Reader, tz: str) -> None:
    if tz == "local":
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long to be a file
        raise r.fail(
            "budget", "timezone", f"unknown time zone {tz!r}", 'use "local" or an IANA name like "Europe/Berlin"'
        ) from None


def update_config(path: Path, changes: dict[str, dict[str, Any]]) -> None:
    """Merge `{section: {key: value}}` into the file (None deletes a key), validating the result.

    tomlkit edits the document in place: the user's comments, order and spacing stay as they were."""
    import tomllib

    import tomlkit

    from .paths import write_private

    doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    for section, values in changes.items():
        node: Any = doc
        for part in section.split("."):
            if part not in node:
                node[part] = tomlkit.table(is_super_table=part != section.split(".")[-1])
            node = node[part]
        for key, value in values.items():
            if value is None:
                node.pop(key, None)
            else:
                node[key] = value
    rendered = tomlkit.dumps(doc)
    parse_config(tomllib.loads(rendered), path, rendered)  # never write a config we can't read back
    write_private(path, rendered)
