"""Who may do what on the collector (issue 20 item 6). Pure: no I/O, no aiohttp.

Every token carries one role:

- `developer` pushes their own usage and reads the caps that apply to them; nothing else.
- `lead` (team lead) does what a developer does, plus their own team's reports, dashboard, export, audit
  trail, caps and alerts — never another team's.
- `finance` reads reports, the dashboard, exports and the audit trail of every team; changes nothing and
  pushes nothing.
- `admin` does everything. `collector token add --admin` is kept as a synonym of `--role admin`.

Every route the app serves is listed in ROUTES with the permission it needs; a route missing from the list is
refused (fail closed), and tests/sync/test_collector_roles.py checks that the app has no such route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLES = ("developer", "lead", "finance", "admin")
ALIASES = {"team-lead": "lead", "team_lead": "lead", "teamlead": "lead", "dev": "developer"}

# permission -> {role: "own" (their team only) | "all"}
PERMISSIONS: dict[str, dict[str, str]] = {
    "push": {"developer": "own", "lead": "own", "admin": "all"},
    "caps.read": {"developer": "own", "lead": "own", "finance": "own", "admin": "all"},
    "caps.write": {"lead": "own", "admin": "all"},
    "alerts": {"lead": "own", "admin": "all"},
    "reports": {"lead": "own", "finance": "all", "admin": "all"},
    "export": {"lead": "own", "finance": "all", "admin": "all"},
    "audit": {"lead": "own", "finance": "all", "admin": "all"},
    "metrics": {"finance": "all", "admin": "all"},
    "admin": {"admin": "all"},
}

WHAT = {
    "push": "push usage",
    "caps.read": "read caps",
    "caps.write": "change caps",
    "alerts": "manage alerts",
    "reports": "read reports",
    "export": "export data",
    "audit": "read the audit trail",
    "metrics": "read metrics",
    "admin": "do this",
}

# (method, route as registered) -> permission. Health and the redirect at / need no token.
ROUTES: dict[tuple[str, str], str | None] = {
    ("GET", "/v1/health"): None,
    ("GET", "/"): None,
    ("POST", "/v1/push"): "push",
    ("GET", "/v1/caps"): "caps.read",
    ("PUT", "/v1/caps"): "caps.write",
    ("GET", "/v1/report"): "reports",
    ("GET", "/v1/export/focus"): "export",
    ("GET", "/v1/export/audit"): "audit",
    ("GET", "/v1/audit"): "audit",
    ("GET", "/dashboard"): "dashboard",
    ("GET", "/v1/plan-windows"): "reports",
    ("GET", "/metrics"): "metrics",  # or no token at all from --metrics-network (metrics_page decides)
}
PERMISSIONS["dashboard"] = PERMISSIONS["reports"]
WHAT["dashboard"] = "open the dashboard"


def normalize(role: str | None) -> str | None:
    """A role name as given on the command line or in a request, or None when it is not one."""
    if role is None:
        return None
    name = role.strip().lower()
    name = ALIASES.get(name, name)
    return name if name in ROLES else None


@dataclass(frozen=True)
class Grant:
    """What a token may see: every team (`team` None) or one."""

    team: str | None

    @property
    def all_teams(self) -> bool:
        return self.team is None


class Denied(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def role_of(who: dict[str, Any]) -> str:
    return normalize(who.get("role")) or ("admin" if who.get("admin") else "developer")


def check(who: dict[str, Any], permission: str) -> Grant:
    """The grant for `permission`, or Denied with a message that says which role would do."""
    role = role_of(who)
    rule = PERMISSIONS.get(permission)
    if rule is None:  # fail closed: a route nobody gave a rule to answers no one
        raise Denied(f"no role may use this route yet ({permission}); list it in collector/roles.py ROUTES")
    reach = rule.get(role)
    if reach is None:
        allowed = [r for r in ROLES if r in rule]
        return _deny(
            f"a {role} token may not {WHAT.get(permission, permission)}; that needs a "
            f"{' or '.join(allowed)} token (agentmeter collector token add --role {allowed[-1]})"
        )
    if reach == "all":
        return Grant(None)
    if permission in ("push", "caps.read"):  # about the token's own developer, whatever the team
        return Grant(who.get("team") or None)
    if not who.get("team"):
        return _deny(
            f"this {role} token has no team, so it may not {WHAT.get(permission, permission)}; "
            "issue one with: agentmeter collector token add --role lead --team TEAM"
        )
    return Grant(who["team"])


def _deny(message: str) -> Grant:
    raise Denied(message)


def may_touch_team(grant: Grant, team: str | None) -> bool:
    return grant.all_teams or (team is not None and team == grant.team)
