"""`agentmeter prompt`: a few characters for PS1, starship or p10k — `$4.20/$20 21%`, coloured by stage.

It runs on every prompt, so it is a fast path (no typer, rich, aiohttp or genai-prices): one read-only
query over at most ~37 rows of the daily rollup, never a scan of requests. It shows the capped window
(day, week or month) nearest its cap; with no cap, today's spend; with neither, nothing.

The answer is cached in the state dir, keyed on config.toml's and the ledger's (and its WAL's) mtime and
size and valid until the day ends: on a hit only this module, paths and render are imported (reading the
config and the rollup costs ~30 ms of imports more, measured in docs/shell.md).
"""

from __future__ import annotations

import json
import os
from collections import namedtuple
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms) on every prompt
if TYPE_CHECKING:
    from ..core.clock import Clock
    from ..home.config import Budget, Config
    from ..home.paths import Paths
    from ..ledger.read import Connection

NAMES = ("day", "week", "month")
CACHE_VERSION = 1
LABEL = {"day": "", "week": "wk ", "month": "mo "}
# ANSI colours by stage: green ok, yellow alert, magenta downgrade, red blocked.
COLOURS = {"ok": "32", "alert": "33", "downgrade": "35", "blocked": "31"}


class WindowUse(namedtuple("WindowUse", "name spent_usd spent_tokens cap_usd cap_tokens used_pct stage")):
    """Spend against the caps in one window (day, week, month); `used_pct` is of the tighter cap, None
    when uncapped. A namedtuple, not a dataclass: importing dataclasses costs ~8 ms on every prompt."""

    __slots__ = ()

    @property
    def capped(self) -> bool:
        return self.cap_usd is not None or self.cap_tokens is not None


def connect(path: Path) -> Connection | None:
    """The ledger, read-only; None when there is none yet. Never migrates: the prompt must not write."""
    from ..ledger import read

    return read.connect(path, timeout=2)


def effective_budget(config: Config, conn: Connection | None) -> Budget:
    """Team caps fetched from the collector apply as they do in the proxy (the stricter wins)."""
    from ..ledger.sync import team_caps

    caps = team_caps(conn) if conn is not None else {}
    if not caps:
        return config.budget
    from ..sync.caps import effective_budget as merge

    return merge(config, caps)


def window_use(config: Config, clock: Clock, conn: Connection | None) -> list[WindowUse]:
    """Spend against the caps in the day, week and month windows, from the daily rollup."""
    from datetime import timedelta

    from ..budget.policy import WindowSpend, standing, thresholds_of
    from ..budget.spend import caps_of
    from ..budget.windows import window
    from ..core.timezone import resolve_tz
    from ..ledger import read

    tz = resolve_tz(config.budget.timezone)
    now = clock.now()
    b = effective_budget(config, conn)
    t = thresholds_of(b)
    windows = [window(name, now, tz) for name in NAMES]
    first, last = min(w.first_day for w in windows), max(w.last_day for w in windows)
    by_day = read.spend_by_day(conn, first.isoformat(), last.isoformat())
    out = []
    for w in windows:
        days = [(w.first_day + timedelta(days=i)).isoformat() for i in range((w.last_day - w.first_day).days + 1)]
        usd = sum(by_day.get(d, (0.0, 0))[0] for d in days)
        tokens = sum(by_day.get(d, (0.0, 0))[1] for d in days)
        cap_usd, cap_tokens = caps_of(b.caps, w.name)
        used_pct, stage = standing(WindowSpend(w.name, w.end, usd, tokens, cap_usd, cap_tokens), t)
        out.append(
            WindowUse(
                w.name,
                round(usd, 6),
                tokens,
                cap_usd,
                cap_tokens,
                None if used_pct is None else min(used_pct, 9999.9),
                stage,
            )
        )
    return out


PLAN_SHORT = {"five_hour": "5h", "seven_day": "7d"}


def plan_use(conn: Connection | None, now_s: float, lines: dict | None = None) -> list[tuple]:
    """Subscription plan windows from the ledger's latest readings (issue 18), tightest first:
    [(short label, used %, stage, provider)]. A reading whose reset has passed counts as 0 %."""
    from ..ledger import read

    out = []
    for provider, window, used, resets in read.plan_latest(conn):
        used = 0.0 if resets and now_s >= resets else float(used)
        name = window.rpartition(":")[2]
        line = (lines or {}).get(name)
        top = line * 100 if line else 100.0
        stage = "blocked" if used >= top else "alert" if used >= top * 0.8 else "ok"
        out.append((PLAN_SHORT.get(window, window), used, stage, provider))
    out.sort(key=lambda x: -x[1])
    return out


def plan_segment(
    conn: Connection | None, now_s: float, lines: dict | None, *, color: bool, shell: str | None
) -> tuple[str, dict | None]:
    """`plan 5h 72%`: the tightest plan window, for `agentmeter prompt --plan`."""
    uses = plan_use(conn, now_s, lines)
    if not uses:
        return "", None
    label, used, stage, provider = uses[0]
    text = f"plan {label} {used:.0f}%"
    if shell == "zsh":
        text = text.replace("%", "%%")
    return (paint(text, stage, shell) if color else text), {
        "window": label,
        "used_pct": used,
        "stage": stage,
        "provider": provider,
    }


def pick(uses: list[WindowUse]) -> WindowUse | None:
    """The capped window nearest its cap (the shorter one on a tie); else the day if anything was spent."""
    capped = [u for u in uses if u.capped]
    if capped:
        return max(capped, key=lambda u: (u.used_pct or 0.0, -NAMES.index(u.name)))
    day = uses[0]
    return day if day.spent_usd > 0 or day.spent_tokens > 0 else None


def money(usd: float, *, cap: bool = False) -> str:
    if cap and float(usd).is_integer():
        return f"${usd:,.0f}"
    return f"${usd:,.2f}" if usd < 1000 else f"${usd:,.0f}"


def count(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return str(int(n))


def text_of(u: WindowUse) -> str:
    if u.cap_usd is not None or u.cap_tokens is None:
        amount = money(u.spent_usd) + (f"/{money(u.cap_usd, cap=True)}" if u.cap_usd is not None else "")
    else:
        amount = f"{count(u.spent_tokens)}/{count(u.cap_tokens)} tok"
    pct = f" {u.used_pct:.0f}%" if u.used_pct is not None else ""
    return f"{LABEL[u.name]}{amount}{pct}"


def paint(text: str, stage: str, shell: str | None) -> str:
    """Colour for a prompt. Invisible bytes must be marked or the line editor miscounts the width:
    \\001…\\002 for bash/readline (PS1's \\[ \\] are not read in command output), %{…%} for zsh."""
    on, off = f"\033[{COLOURS[stage]}m", "\033[0m"
    if shell == "bash":
        on, off = f"\001{on}\002", f"\001{off}\002"
    elif shell == "zsh":
        on, off = f"%{{{on}%}}", f"%{{{off}%}}"
    return f"{on}{text}{off}"


def segment(u: WindowUse | None, *, color: bool, shell: str | None) -> str:
    if u is None:
        return ""
    text = text_of(u)
    if shell == "zsh":
        text = text.replace("%", "%%")  # zsh expands % escapes in a command's output under prompt_subst
    return paint(text, u.stage, shell) if color else text


def compute(paths: Paths, clock: Clock) -> tuple[WindowUse | None, int]:
    """The window to show, and until when (ms) that answer holds if nothing is written: the day's end."""
    from ..budget.windows import window
    from ..core.timezone import resolve_tz
    from ..home.config import load_config

    config = load_config(paths.config_file)
    conn = connect(paths.ledger)
    try:
        chosen = pick(window_use(config, clock, conn))
    finally:
        if conn is not None:
            conn.close()
    day = window("day", clock.now(), resolve_tz(config.budget.timezone))
    return chosen, int(day.end.timestamp() * 1000)


def _fingerprint(paths: Paths) -> list:
    out = []
    for p in (paths.config_file, paths.ledger, Path(f"{paths.ledger}-wal")):
        try:
            st = os.stat(p)
        except OSError:
            st = None
        # A reader creates an empty WAL when there is none: that is no change to the data.
        out.append([st.st_mtime_ns, st.st_size] if st and (st.st_size or p == paths.config_file) else None)
    return out


def cached(paths: Paths, now_ms: int) -> tuple[bool, WindowUse | None]:
    try:
        data = json.loads((paths.state_dir / "prompt.json").read_text(encoding="utf-8"))
        if (
            data.get("v") != CACHE_VERSION
            or data.get("key") != _fingerprint(paths)
            or not now_ms < data.get("until_ms", 0)
        ):
            return False, None
        return True, WindowUse(**data["window"]) if data.get("window") else None
    except (OSError, ValueError, TypeError, KeyError):
        return False, None


def remember(paths: Paths, key: list, chosen: WindowUse | None, until_ms: int) -> None:
    from ..home.paths import write_private

    data = {"v": CACHE_VERSION, "key": key, "until_ms": until_ms, "window": chosen._asdict() if chosen else None}
    try:
        write_private(paths.state_dir / "prompt.json", json.dumps(data))
    except OSError:
        pass  # a read-only state dir: every prompt computes, nothing breaks


def current(paths: Paths, clock: Clock) -> WindowUse | None:
    """The window `agentmeter prompt` shows: from the cache while it holds, else computed and cached."""
    hit, chosen = cached(paths, clock.now_ms())
    if not hit:
        key = _fingerprint(paths)  # taken before reading, so a write meanwhile invalidates the cache
        chosen, until_ms = compute(paths, clock)
        remember(paths, key, chosen, until_ms)
    return chosen


def plan_now(paths: Paths, clock: Clock, *, color: bool, shell: str | None) -> tuple[str, dict | None]:
    """`--plan`: one indexed read of the latest readings (no cache: a window's reset moves under it)."""
    from ..home.config import load_config

    conn = connect(paths.ledger)
    try:
        return plan_segment(
            conn, clock.now_ms() / 1000, load_config(paths.config_file).budget.plan, color=color, shell=shell
        )
    finally:
        if conn is not None:
            conn.close()
