"""Subscription plan windows read off response headers. Sans-io: header pairs in, a PlanSnapshot out.

Shapes, as the agents themselves read them (Claude Code 2.1.197's bundled cli, Codex's
codex-rs/codex-api/src/rate_limits.rs):

- Anthropic, `anthropic-ratelimit-unified-*`: `status` (allowed | allowed_warning | rejected), `reset`,
  `representative-claim` (the window that governs, e.g. five_hour), `fallback`, and per window
  `<abbr>-utilization` (a spent fraction 0..1), `<abbr>-reset` (unix seconds) and
  `<abbr>-surpassed-threshold`, with abbr `5h`, `7d`, `7d_oi`, `overage` (and per-model weekly windows
  where sent); the `overage-*` fields. The classic per-minute family
  `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}` is kept raw.
- Codex on the ChatGPT backend, `x-codex-*`: `primary-used-percent` (0..100), `primary-window-minutes`
  (300 = five hours), `primary-reset-at` (unix seconds; some captures send `-reset-after-seconds`), the
  same for `secondary` (10080 = a week); other limit families as `x-codex-<limit>-primary-…` with
  `x-codex-active-limit`; `x-codex-credits-*`. Inside a stream, a `codex.rate_limits` event carries
  `rate_limits.{primary,secondary}.{used_percent,window_minutes,reset_at}`.

Headers of these families that are not understood are kept verbatim in `extra`, never dropped: a field
the provider adds later is stored and shown raw.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

ANTHROPIC_FAMILY = "anthropic-ratelimit-"
UNIFIED = "anthropic-ratelimit-unified-"
CODEX_FAMILY = "x-codex-"
# Header names that are not window data but worth keeping as the snapshot's own fields.
_UNIFIED_TOP = {
    "status",
    "reset",
    "representative-claim",
    "fallback",
    "overage-status",
    "overage-reset",
    "overage-in-use",
    "overage-disabled-reason",
    "upgrade-paths",
}
_ABBR_NAMES = {"5h": "five_hour", "7d": "seven_day", "7d_oi": "seven_day_overage_included", "overage": "overage"}
_MINUTES_NAMES = {300: "five_hour", 10080: "seven_day"}
_UNIFIED_WINDOW = re.compile(r"^([a-z0-9_]+)-(utilization|reset|surpassed-threshold)$")
_CODEX_WINDOW = re.compile(
    r"^x-([a-z0-9-]+)-(primary|secondary)-(used-percent|window-minutes|reset-at|"
    r"reset-after-seconds)$"
)
_CLASSIC = re.compile(r"^anthropic-ratelimit-(requests|tokens|input-tokens|output-tokens)-(limit|remaining|reset)$")
_FIRST = frozenset((b"a", b"A", b"x", b"X"))  # most headers are turned away by their first byte
MAX_VALUE = 256  # a header value longer than this is cut: a hostile upstream cannot bloat the ledger


@dataclass(frozen=True, slots=True)
class PlanWindow:
    name: str  # five_hour, seven_day, seven_day_opus, …; a Codex limit family other than `codex` prefixes it
    used_pct: float  # 0..100
    resets_at: int | None = None  # unix seconds
    window_minutes: int | None = None

    def as_dict(self) -> dict:
        return {
            "window": self.name,
            "used_pct": round(self.used_pct, 3),
            "resets_at": self.resets_at,
            "window_minutes": self.window_minutes,
        }


@dataclass(frozen=True, slots=True)
class PlanSnapshot:
    provider: str  # anthropic | openai
    status: str | None = None  # allowed | allowed_warning | rejected (Anthropic); rejected on a Codex 429
    claim: str | None = None  # the window the provider says governs
    windows: tuple[PlanWindow, ...] = ()
    known: dict[str, str] = field(default_factory=dict)  # understood non-window fields (overage, credits)
    extra: dict[str, str] = field(default_factory=dict)  # headers of the family not understood, verbatim

    def compact(self) -> str:
        """The per-request row: windows as {name: [used_pct, resets_at, minutes]}, plus what was not
        understood. Known headers are rebuilt from the parsed fields, so they are not stored twice."""
        data: dict = {"w": {w.name: [round(w.used_pct, 3), w.resets_at, w.window_minutes] for w in self.windows}}
        if self.claim:
            data["c"] = self.claim
        if self.known:
            data["k"] = self.known
        if self.extra:
            data["x"] = self.extra
        return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _num(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        f = float(value.strip())
    except ValueError:
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def _epoch(value: str | None) -> int | None:
    f = _num(value)
    if f is None or f <= 0:
        return None
    return int(f / 1000) if f > 10_000_000_000 else int(f)  # milliseconds in some captures


def family_headers(raw_headers) -> dict[str, str]:
    """The plan-window headers among `raw_headers` (aiohttp's (bytes, bytes) pairs or str pairs), names
    lower-cased. This is the hot-path part: one prefix test per header."""
    out: dict[str, str] = {}
    for k, v in raw_headers:
        if isinstance(k, bytes):
            if k[:1] not in _FIRST or not (k[:20].lower() == b"anthropic-ratelimit-" or k[:8].lower() == b"x-codex-"):
                continue
            name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        else:
            low = k.lower()
            if not (low.startswith(ANTHROPIC_FAMILY) or low.startswith(CODEX_FAMILY)):
                continue
            name, value = low, v
        out[name] = value[:MAX_VALUE]
    return out


def capture(provider: str, raw_headers, *, http_status: int = 200, now_s: int = 0) -> PlanSnapshot | None:
    """The plan snapshot a response carries, or None when it carries none of these headers."""
    fam = family_headers(raw_headers)
    return parse(provider, fam, http_status=http_status, now_s=now_s) if fam else None


def parse(provider: str, fam: dict[str, str], *, http_status: int = 200, now_s: int = 0) -> PlanSnapshot:
    """A snapshot from headers already picked out by `family_headers`."""
    if provider == "anthropic":
        return _anthropic(fam)
    return _codex(fam, http_status, now_s)


def _window_name(abbr: str) -> str:
    if abbr in _ABBR_NAMES:
        return _ABBR_NAMES[abbr]
    head, _, rest = abbr.partition("_")  # 7d_opus → seven_day_opus
    return f"{_ABBR_NAMES[head]}_{rest}" if head in _ABBR_NAMES and rest else abbr


def _anthropic(fam: dict[str, str]) -> PlanSnapshot:
    known: dict[str, str] = {}
    extra: dict[str, str] = {}
    parts: dict[str, dict[str, str]] = {}
    for name, value in fam.items():
        if name.startswith(UNIFIED):
            tail = name[len(UNIFIED) :]
            if tail in _UNIFIED_TOP:
                known[tail] = value
                continue
            m = _UNIFIED_WINDOW.match(tail)
            if m and not tail.startswith("overage-period"):
                parts.setdefault(m.group(1), {})[m.group(2)] = value
                continue
        elif _CLASSIC.match(name):
            known[name[len(ANTHROPIC_FAMILY) :]] = value
            continue
        extra[name] = value
    windows = []
    for abbr, p in parts.items():
        used = _num(p.get("utilization"))
        if used is None:  # a reset or threshold alone is not a window reading: keep it raw
            extra.update({f"{UNIFIED}{abbr}-{k}": v for k, v in p.items()})
            continue
        windows.append(PlanWindow(_window_name(abbr), used * 100.0, _epoch(p.get("reset"))))
        if "surpassed-threshold" in p:
            known[f"{abbr}-surpassed-threshold"] = p["surpassed-threshold"]
    status = known.pop("status", None)
    claim = known.pop("representative-claim", None)
    return PlanSnapshot("anthropic", status, claim, tuple(sorted(windows, key=lambda w: w.name)), known, extra)


def _codex(fam: dict[str, str], http_status: int, now_s: int) -> PlanSnapshot:
    known: dict[str, str] = {}
    extra: dict[str, str] = {}
    parts: dict[tuple[str, str], dict[str, str]] = {}
    for name, value in fam.items():
        m = _CODEX_WINDOW.match(name)
        if m:
            parts.setdefault((m.group(1), m.group(2)), {})[m.group(3)] = value
        elif name.startswith("x-codex-credits-") or name in ("x-codex-active-limit", "x-codex-plan-type"):
            known[name[len(CODEX_FAMILY) :]] = value
        else:
            extra[name] = value
    windows = []
    for (limit, slot), p in parts.items():
        used = _num(p.get("used-percent"))
        if used is None:
            extra.update({f"x-{limit}-{slot}-{k}": v for k, v in p.items()})
            continue
        minutes_f = _num(p.get("window-minutes"))
        minutes = int(minutes_f) if minutes_f else None
        resets = _epoch(p.get("reset-at"))
        after = _num(p.get("reset-after-seconds"))
        if resets is None and after is not None and now_s:
            resets = int(now_s + after)
        if used == 0 and not minutes and resets is None:
            continue  # Codex ignores an all-zero family too
        name = _MINUTES_NAMES.get(minutes or 0) or (f"{minutes}m" if minutes else slot)
        lid = limit.replace("-", "_")
        windows.append(PlanWindow(name if lid == "codex" else f"{lid}:{name}", used, resets, minutes))
    status = "rejected" if http_status == 429 and windows else ("allowed" if windows else None)
    return PlanSnapshot(
        "openai", status, known.get("active-limit"), tuple(sorted(windows, key=lambda w: w.name)), known, extra
    )


def from_codex_event(data: dict) -> PlanSnapshot | None:
    """A `codex.rate_limits` stream event (the same windows the headers carry, mid-stream)."""
    if not isinstance(data, dict) or data.get("type") != "codex.rate_limits":
        return None
    rl = data.get("rate_limits")
    if not isinstance(rl, dict):
        rl = {}
    windows = []
    for slot in ("primary", "secondary"):
        w = rl.get(slot)
        if not isinstance(w, dict) or not isinstance(w.get("used_percent"), int | float):
            continue
        minutes = w.get("window_minutes") if isinstance(w.get("window_minutes"), int) else None
        resets = w.get("reset_at") if isinstance(w.get("reset_at"), int) else None
        windows.append(
            PlanWindow(
                _MINUTES_NAMES.get(minutes or 0) or (f"{minutes}m" if minutes else slot),
                float(w["used_percent"]),
                resets,
                minutes,
            )
        )
    if not windows:
        return None
    refused = rl.get("limit_reached") is True or rl.get("allowed") is False
    return PlanSnapshot(
        "openai", "rejected" if refused else "allowed", None, tuple(sorted(windows, key=lambda w: w.name))
    )
