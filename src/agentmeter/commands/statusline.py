"""`agentmeter statusline`: the line under Claude Code's prompt, fed Claude Code's JSON on stdin.

    agentmeter │ session $0.42 · today $4.20/$20 21% (est.) │ plan 5h 24% · 7d 41% (official)

The session cost and the budget use are agentmeter's own figures, priced at list rates: estimates. The plan
percentages are Claude Code's `rate_limits` (from Anthropic's rate-limit headers, subscribers only): official.
Claude Code runs this every few hundred milliseconds, so it is a fast path like `prompt`. It never fails:
a non-zero exit would blank the line, so problems are shown in the line itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.clock import Clock
from ..core.errors import AgentmeterError, UsageError
from ..home.config import Config
from ..ledger import read
from .prompt import COLOURS, WindowUse, money, paint, text_of, window_use

SEP = " │ "
# A Claude Code session can be resumed days later; look that far back for its requests when the
# agentmeter session is unknown (imported usage, or a `claude` not started through agentmeter).
LOOKBACK_MS = 7 * 86_400_000
PLAN_WINDOWS = (("five_hour", "5h"), ("seven_day", "7d"))


@dataclass(frozen=True)
class SessionCost:
    usd: float | None
    source: str  # "ledger" (agentmeter metered it), "claude" (Claude Code's own estimate) or "none"


def parse_payload(text: str) -> dict:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _get(d: dict, *path: str):
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def session_cost(
    conn: read.Connection | None, payload: dict, now_ms: int, agentmeter_session: str | None
) -> SessionCost:
    """What agentmeter metered for this Claude Code session (`session_id` = the ledger's agent_session_id),
    else Claude Code's own `cost.total_cost_usd`."""
    asid = payload.get("session_id") if isinstance(payload.get("session_id"), str) else None
    if conn is not None and asid:
        try:
            # Inside `agentmeter run claude` the statusline inherits AGENTMETER_SESSION_ID: the session index
            # answers at once. Otherwise the agentmeter sessions that saw this Claude session, then a look back.
            usd = read.agent_session_cost(conn, asid, now_ms - LOOKBACK_MS, agentmeter_session)
        except read.OperationalError:
            usd = None
        if usd is not None:
            return SessionCost(usd, "ledger")
    cc = _number(_get(payload, "cost", "total_cost_usd"))
    return SessionCost(cc, "claude") if cc is not None else SessionCost(None, "none")


def plan_limits(payload: dict) -> list[tuple[str, float]]:
    """Claude Code's official plan use, when it sends it: [("5h", 24.0), ("7d", 41.2)]."""
    limits = payload.get("rate_limits")
    out = []
    for key, label in PLAN_WINDOWS:
        pct = _number(_get(limits, key, "used_percentage")) if isinstance(limits, dict) else None
        if pct is not None:
            out.append((label, pct))
    return out


def build_line(
    payload: dict, uses: list[WindowUse], cost: SessionCost, *, alert_at: float, color: bool, own_plan: list[tuple] = ()
) -> str:
    def c(text: str, stage: str) -> str:
        return paint(text, stage, None) if color and stage in COLOURS else text

    est = []
    if cost.usd is not None:
        est.append("session " + money(cost.usd) + (" (Claude Code's)" if cost.source == "claude" else ""))
    day = uses[0]
    est.append(c("today " + text_of(day), day.stage) if day.capped else "today " + text_of(day))
    worst = max((u for u in uses[1:] if u.capped and u.stage != "ok"), key=lambda u: u.used_pct or 0, default=None)
    if worst is not None:
        est.append(c(text_of(worst), worst.stage))
    parts = ["agentmeter", " · ".join(est) + " (est.)"]
    plan = plan_limits(payload)
    if plan:

        def stage(pct: float) -> str:
            return "blocked" if pct >= 100 else "alert" if pct >= alert_at * 100 else "ok"

        parts.append("plan " + " · ".join(c(f"{label} {pct:.0f}%", stage(pct)) for label, pct in plan) + " (official)")
    elif own_plan:
        # Claude Code leaves `rate_limits` out when ANTHROPIC_BASE_URL is not the official URL (and for
        # API-key logins): agentmeter read the same windows off the wire (issue 18).
        claude = [u for u in own_plan if u[3] == "anthropic"] or list(own_plan)
        shown = sorted(claude[:2], key=lambda u: u[0])
        parts.append("plan " + " · ".join(c(f"{label} {pct:.0f}%", st) for label, pct, st, _ in shown) + " (wire)")
    return SEP.join(parts)


def render_statusline(
    payload: dict, config: Config, clock: Clock, ledger: Path, *, color: bool, environ: dict[str, str] | None = None
) -> str:
    from .prompt import connect, plan_use

    env = os.environ if environ is None else environ
    conn = connect(ledger)
    try:
        uses = window_use(config, clock, conn)
        cost = session_cost(conn, payload, clock.now_ms(), env.get("AGENTMETER_SESSION_ID") or None)
        own = [] if plan_limits(payload) else plan_use(conn, clock.now_ms() / 1000, config.budget.plan)
    finally:
        if conn is not None:
            conn.close()
    return build_line(payload, uses, cost, alert_at=config.budget.alert_at, color=color, own_plan=own)


# --- `statusline --install`: Claude Code's settings.json, edited without losing anything -------------------


def settings_file(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("CLAUDE_CONFIG_DIR") or str(Path(env.get("HOME") or Path.home()) / ".claude")
    return Path(base) / "settings.json"


def command_line() -> str:
    import shutil

    found = shutil.which("agentmeter")
    return f"{found} statusline" if found else "agentmeter statusline"


@dataclass(frozen=True)
class SettingsChange:
    path: Path
    backup: Path | None
    previous: dict | None  # the statusLine it replaced
    changed: bool


def install(path: Path, command: str, *, force: bool = False) -> SettingsChange:
    """Set `statusLine` in Claude Code's settings.json: keep every other key, back the file up first,
    write atomically, and never replace someone else's status line without --force."""
    from ..hooks.shell import backup_file

    data: dict = {}
    if path.exists():
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise UsageError(
                f"{path} is not valid JSON ({exc}); left unchanged",
                "fix the file (Claude Code would not read it either), then run this again",
            ) from None
        if not isinstance(data, dict):
            raise UsageError(f"{path} is not a JSON object; left unchanged", "fix the file, then run this again")
    wanted = {"type": "command", "command": command, "padding": 0}
    previous = data.get("statusLine")
    if isinstance(previous, dict) and previous.get("command") == command:
        return SettingsChange(path, None, previous, False)
    if previous and not force and "agentmeter" not in json.dumps(previous):
        raise UsageError(
            f"{path} already has a statusLine: {json.dumps(previous)}",
            "run with --force to replace it (the file is backed up first)",
        )
    backup = backup_file(path) if path.exists() else None
    data["statusLine"] = wanted
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..home.paths import atomic_write

    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")  # keeps its mode and owner
    return SettingsChange(path, backup, previous if isinstance(previous, dict) else None, True)


def line_for(stdin_text: str, *, color: bool) -> str:
    """The status line for Claude Code's JSON. Never raises for a bad config or ledger: the error is the line
    (Claude Code hides stderr and shows nothing on failure)."""
    from ..core.clock import SystemClock
    from ..home.config import load_config
    from ..home.paths import get_paths

    payload = parse_payload(stdin_text)
    try:
        return render_statusline(payload, load_config(), SystemClock(), get_paths().ledger, color=color)
    except AgentmeterError as exc:
        return f"agentmeter: {exc.message}"
    except read.Error as exc:
        return f"agentmeter: ledger unreadable ({exc})"
