"""`agentmeter doctor`: every moving part checked, with a fix for each problem."""

from __future__ import annotations

import shutil
import stat
import subprocess
from dataclasses import asdict, dataclass

from ..core.errors import AgentmeterError
from ..home.paths import get_paths


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn, fail; info: worth knowing, nothing to fix (an agent you do not use)
    detail: str
    fix: str | None = None


def _config() -> tuple[Check, object | None]:
    from ..home.config import load_config

    try:
        cfg = load_config()
    except AgentmeterError as exc:
        return Check("config", "fail", exc.message, exc.hint), None
    where = str(cfg.source) if cfg.source else f"{get_paths().config_file} (not created; defaults apply)"
    return Check("config", "ok", where), cfg


def _storage() -> Check:
    from ..home.paths import storage_error, storage_problem

    problem = storage_problem()
    if problem is not None:
        err = storage_error(problem)
        return Check("home", "fail", err.message, err.hint)
    p = get_paths()
    return Check("home", "ok", f"{p.data_dir} is writable")


def _daemon() -> Check:
    from ..proxy import daemon

    info = daemon.status()
    if info.running:
        h = daemon.health(info.port) or {}
        if h.get("metering") == "degraded" or h.get("ledger_dropped"):
            return Check(
                "proxy",
                "warn",
                f"running (pid {info.pid}), but the ledger refuses writes "
                f"({h.get('ledger_error')}): {h.get('ledger_backlog', 0)} rows held in memory, "
                f"{h.get('ledger_dropped', 0)} lost; requests are still relayed",
                f"free disk space where the ledger lives ({get_paths().data_dir}); held rows are "
                "written as soon as it accepts them",
            )
        return Check("proxy", "ok", f"running (pid {info.pid}) at {info.url}, version {info.version}")
    if info.pid:
        return Check(
            "proxy",
            "warn",
            f"pid file names {info.pid} but it does not answer",
            "agentmeter proxy stop && agentmeter proxy start",
        )
    return Check("proxy", "ok", "not running; agentmeter run starts it on demand")


def _upstreams(cfg) -> Check:
    """Where requests go: the running daemon's own answer, compared with what a restart would use."""
    import os

    from ..home.config import DEFAULT_UPSTREAMS, Config
    from ..proxy import daemon

    wanted = {name: (cfg or Config()).upstream(name) for name in DEFAULT_UPSTREAMS}
    info = daemon.status()
    live = (daemon.health(info.port) or {}).get("upstreams") if info.running else None
    shown = live or wanted
    detail = (
        ", ".join(f"{k} {v}" for k, v in shown.items() if v != DEFAULT_UPSTREAMS[k].rstrip("/")) or "the public APIs"
    )
    detail += " (as the running proxy uses them)" if live else ""
    if live and live != wanted:
        changed = ", ".join(f"{k}: {live.get(k)} → {v}" for k, v in wanted.items() if live.get(k) != v)
        env = [
            f"AGENTMETER_UPSTREAM_{k.upper()}"
            for k in DEFAULT_UPSTREAMS
            if os.environ.get(f"AGENTMETER_UPSTREAM_{k.upper()}")
        ]
        return Check(
            "upstreams",
            "warn",
            f"the running proxy relays elsewhere than your settings now say ({changed})",
            "agentmeter proxy stop && agentmeter proxy start" + (f" (with {', '.join(env)} set)" if env else ""),
        )
    return Check("upstreams", "ok", detail)


def _keys() -> list[Check]:
    from ..home import secrets

    out = [Check("keyring", "ok", secrets.keyring_backend_name())]
    for name in ("anthropic", "openai", "gemini"):
        try:
            s = secrets.get_secret(name)
        except AgentmeterError as exc:
            out.append(Check(f"{name} key", "fail", exc.message, exc.hint))
            continue
        if s:
            out.append(Check(f"{name} key", "ok", f"{s.masked()} from {s.where} (key mode: agents get a virtual key)"))
        else:
            out.append(Check(f"{name} key", "ok", "not set (passthrough: agents use their own login or key)"))
    return out


def _agents(declared: tuple[str, ...] = ("claude", "codex", "cursor")) -> list[Check]:
    """Installed agents with how each is metered; a declared one ([agents] in config) that is missing
    warns with its install line; the rest are one line."""
    from ..agents import registry

    out = []
    missing = []
    for spec in registry().values():
        path = shutil.which(spec.binary)
        if not path:
            if spec.name in declared:
                # not having an agent is a choice, not a problem (issue 16): information, with how to install it
                out.append(Check(f"agent {spec.name}", "info", "not installed", spec.install))
            else:
                missing.append(spec.name)
            continue
        version = "?"
        try:
            r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
            version = (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else "?"
        except (OSError, subprocess.TimeoutExpired):
            pass
        out.append(Check(f"agent {spec.name}", "ok", f"{path} ({version}) · metered: {spec.metering} ({spec.how})"))
    if missing:
        out.append(Check("other agents", "ok", f"not installed: {', '.join(missing)} (see: agentmeter agents)"))
    return out


def _ledger() -> Check:
    from ..ledger import read

    path = get_paths().ledger
    if not path.exists():
        return Check("ledger", "ok", f"{path} (empty: nothing recorded yet)")
    mode = stat.S_IMODE(path.stat().st_mode)
    try:
        result, rows = read.quick_check(path)
    except read.DatabaseError as exc:
        return Check("ledger", "fail", f"{path}: {exc}", REPAIR_HINT)
    if result != "ok":
        return Check("ledger", "fail", f"{path}: integrity check says {result}", REPAIR_HINT)
    if mode & 0o077:
        return Check("ledger", "warn", f"{path} is readable by others (mode {mode:o})", f"chmod 600 {path}")
    return Check("ledger", "ok", f"{path}: {rows} requests, integrity ok")


def _clock(cfg) -> Check:
    from ..core.clock import SystemClock

    now = SystemClock().now()
    tz = cfg.budget.timezone if cfg else "local"
    local = now.astimezone()
    detail = f"now {now.isoformat(timespec='seconds')}; windows use {tz}"
    if tz == "local":
        detail += f" ({local.tzname()}, UTC{local.strftime('%z')})"
    if now.year < 2024:
        return Check("clock", "warn", detail, "the system clock looks wrong; check NTP")
    return Check("clock", "ok", detail)


def _prices() -> Check:
    """Which price data is in force, of what date (issue 15)."""
    from ..pricing import data

    info = data.info()
    where = info.url or info.path or "bundled with genai-prices"
    detail = (
        f"{info.source} data of {info.date}, genai-prices {info.genai_prices_version}, {info.models} models ({where})"
    )
    if info.problem:
        return Check(
            "prices", "warn", f"{detail}; cached data not used: {info.problem}", "run: agentmeter prices update"
        )
    return Check("prices", "ok", detail)


def _permissions() -> Check:
    p = get_paths()
    wide = [
        str(d)
        for d in (p.config_dir, p.data_dir, p.state_dir, p.runtime_dir)
        if d.exists() and stat.S_IMODE(d.stat().st_mode) & 0o077
    ]
    if wide:
        return Check("permissions", "warn", f"readable by others: {', '.join(wide)}", f"chmod 700 {' '.join(wide)}")
    return Check("permissions", "ok", "private (0700 directories, 0600 files)")


def _claude_history(now_ms: int | None = None) -> Check:
    """Claude Code deletes transcripts older than `cleanupPeriodDays` (30 by default): warn 3 days ahead about
    history that was never imported."""
    import json
    import os

    from ..core.clock import SystemClock
    from ..importers import claude
    from ..importers.base import find_files
    from ..ledger import open_ledger
    from ..ledger.imports import imported_paths

    period = 30
    for f in claude.settings_files():
        try:
            value = json.loads(f.read_text()).get("cleanupPeriodDays")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            period = value
            break
    files = find_files(claude.roots(), "*.jsonl")
    if not files:
        return Check("claude history", "ok", "no Claude Code transcripts found")
    cutoff = (now_ms or SystemClock().now_ms()) - max(period - 3, 0) * 86_400_000
    from ..ledger.read import DatabaseError

    try:
        ledger = open_ledger(get_paths().ledger, readonly=True)
        try:
            done = imported_paths(ledger)
        finally:
            ledger.close()
    except DatabaseError:
        return Check("claude history", "warn", "cannot tell what was imported: the ledger is unreadable", REPAIR_HINT)
    at_risk = []
    for p in files:
        try:
            st = os.stat(p)
        except OSError:
            continue
        if st.st_mtime * 1000 < cutoff and done.get(str(p)) != st.st_size:
            at_risk.append(p)
    if at_risk:
        return Check(
            "claude history",
            "warn",
            f"{len(at_risk)} Claude Code transcript(s) not imported are due for deletion by its clean-up "
            f"(cleanupPeriodDays = {period})",
            "agentmeter import claude",
        )
    return Check(
        "claude history", "ok", f"{len(files)} transcripts; Claude Code deletes them after {period} days; none at risk"
    )


REPAIR_HINT = (
    "agentmeter doctor --repair: keeps the damaged file as ledger.db.broken-<time>, rebuilds the "
    "ledger from every readable row and says what was lost (by hand: keep a copy, then mv it aside)"
)


def repair_ledger(now_ms: int | None = None) -> Check:
    """Salvage a damaged ledger. Never while the daemon has it open."""
    from datetime import UTC, datetime

    from ..core.clock import SystemClock
    from ..ledger.repair import needs_repair, salvage
    from ..proxy import daemon

    path = get_paths().ledger
    why = needs_repair(path)
    if why is None:
        return Check("ledger repair", "ok", "nothing to repair")
    if daemon.status().running:
        return Check(
            "ledger repair",
            "fail",
            "the proxy has the ledger open",
            "agentmeter proxy stop, then agentmeter doctor --repair",
        )
    stamp = datetime.fromtimestamp((now_ms or SystemClock().now_ms()) / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
    s = salvage(path, stamp)
    kept = f"{s.recovered.get('requests', 0)} requests and {s.recovered.get('sessions', 0)} sessions recovered"
    unreadable = sorted(t for t, n in s.lost.items() if n is None)
    lost_known = {t: n for t, n in s.lost.items() if n}
    parts = [
        f"{n} {t} rows" + (" (estimated: the last page was lost)" if t in s.estimated else "")
        for t, n in sorted(lost_known.items())
    ]
    if unreadable and len(unreadable) == len(s.lost):
        return Check(
            "ledger repair",
            "warn",
            f"damaged file kept as {s.backup}; nothing in it could be read, so a fresh ledger was started",
            "agentmeter import claude / codex can restore usage from the agents' own logs",
        )
    if unreadable:
        parts.append(f"all of {', '.join(unreadable)} (unreadable; how many rows they held is unknown)")
    lost = "lost: " + "; ".join(parts) if parts else "nothing lost"
    detail = f"damaged file kept as {s.backup}; {kept}; {lost}"
    return Check(
        "ledger repair",
        "warn" if parts else "ok",
        detail,
        "agentmeter import claude / codex can restore usage from the agents' own logs" if parts else None,
    )


def run_checks(repair: bool = False) -> list[Check]:
    config_check, cfg = _config()
    ledger = [_ledger()]
    if repair and ledger[0].status == "fail":
        ledger = [repair_ledger(), _ledger()]
    return [
        config_check,
        _storage(),
        _daemon(),
        _upstreams(cfg),
        *_keys(),
        *ledger,
        _permissions(),
        _prices(),
        _clock(cfg),
        _claude_history(),
        *_agents(tuple(cfg.agents) if cfg is not None else ("claude", "codex", "cursor")),
    ]


def as_dicts(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]
