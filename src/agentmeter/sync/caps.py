"""Team caps from the collector merged with the developer's own: per cap, the stricter wins.

Pure and light (imported by `status` on its fast path and by the proxy's budget check).
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from ..home.config import Budget, Caps, Config

CAP_FIELDS = tuple(f.name for f in fields(Caps))


def _scopes(team_caps: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for scope in ("team", "developer"):
        caps = (team_caps or {}).get(scope)
        if isinstance(caps, dict):
            out.append((scope, caps))
    return out


def _valid(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def cap_sources(config: Config, team_caps: dict[str, Any] | None) -> dict[str, str]:
    """For each cap field that is set: where its effective value comes from — `personal`, `team <name>` or
    `developer` (a cap the collector holds for this developer)."""
    best: dict[str, tuple[float, str]] = {}
    for name in CAP_FIELDS:
        mine = getattr(config.budget.caps, name)
        if mine is not None:
            best[name] = (mine, "personal")
    for scope, caps in _scopes(team_caps):
        label = f"team {caps.get('name')}" if scope == "team" and caps.get("name") else scope
        for name in CAP_FIELDS:
            value = caps.get(name)
            if _valid(value) and (name not in best or value < best[name][0]):
                best[name] = (value, label)
    return {name: src for name, (_v, src) in best.items()}


def snooze_allowed(team_caps: dict[str, Any] | None) -> bool:
    """`budget snooze` lifts a collector cap only where the team lead allowed it (collector caps set
    --allow-snooze); personal caps can always be snoozed."""
    wallet = (team_caps or {}).get("wallet")  # the team wallet (sync/wallet.py) holds its own say
    if isinstance(wallet, dict) and wallet.get("allow_snooze") is not True:
        return False
    return all(
        caps.get("allow_snooze") is True
        for _scope, caps in _scopes(team_caps)
        if any(_valid(caps.get(n)) for n in CAP_FIELDS)
    )


def effective_budget(config: Config, team_caps: dict[str, Any] | None) -> Budget:
    """The budget to enforce: the config's, with each cap replaced by a stricter team or developer cap."""
    scopes = _scopes(team_caps)
    if not scopes:
        return config.budget
    changes = {}
    for name in CAP_FIELDS:
        values = [v for _s, caps in scopes if _valid(v := caps.get(name))]
        mine = getattr(config.budget.caps, name)
        if mine is not None:
            values.append(mine)
        if values and min(values) != mine:
            value = min(values)
            changes[name] = int(value) if name.endswith("_tokens") else float(value)
    if not changes:
        return config.budget
    return replace(config.budget, caps=replace(config.budget.caps, **changes))
