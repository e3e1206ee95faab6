"""Which session used how much of a plan window.

The provider reports only the account's utilization. Method: for each window, take consecutive
readings (r0, r1) of the same account in the same window instance (same reset time). The provider counts
a request's usage when it finishes, and a reading comes from the headers at the start of a response, so
the rise r1 − r0 was caused by the requests that *finished* between the two readings. That rise is given
to those requests' sessions in proportion to their API-list-equivalent cost (tokens when unpriced).

- One session finished requests in the interval: its share is exact (up to the provider's rounding).
- Several sessions did (overlapping sessions): the split is an estimate. Its worst-case error is counted:
  a session's true part of a mixed interval lies anywhere in [0, rise], so each session's `error_pct`
  adds max(share, rise − share) for every mixed interval it took part in.
- No request finished in the interval: the rise came from outside agentmeter (the web app, another
  machine): it goes to `other`.
- The first reading of a window instance has no predecessor: what was used before is `before`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

OTHER = "other"


@dataclass(frozen=True, slots=True)
class Point:
    at_ms: int
    used_pct: float
    resets_at: int | None


@dataclass(frozen=True, slots=True)
class Finished:
    session_id: str
    end_ms: int
    weight: float  # cost in USD, or tokens


@dataclass
class Share:
    used_pct: float = 0.0
    error_pct: float = 0.0


@dataclass
class WindowShares:
    by_session: dict[str, Share] = field(default_factory=dict)
    mixed_pct: float = 0.0  # rise split between more than one session (estimated)
    exact_pct: float = 0.0  # rise from a single session


def attribute(points: list[Point], finished: list[Finished]) -> WindowShares:
    """`points`: one window's readings in time order; `finished`: the account's requests in end order."""
    out = WindowShares()
    fin = sorted(finished, key=lambda f: f.end_ms)
    j = 0
    for p0, p1 in pairwise(points):
        while j < len(fin) and fin[j].end_ms <= p0.at_ms:
            j += 1
        k = j
        weights: dict[str, float] = {}
        while k < len(fin) and fin[k].end_ms <= p1.at_ms:
            weights[fin[k].session_id] = weights.get(fin[k].session_id, 0.0) + max(fin[k].weight, 0.0)
            k += 1
        if p1.resets_at != p0.resets_at:
            rise = p1.used_pct  # the window rolled over between the two readings
        else:
            rise = p1.used_pct - p0.used_pct
        if rise <= 0:
            continue
        if not weights:
            out.by_session.setdefault(OTHER, Share()).used_pct += rise
            continue
        total = sum(weights.values())
        n = len(weights)
        for sid, w in weights.items():
            part = rise * (w / total if total > 0 else 1 / n)
            s = out.by_session.setdefault(sid, Share())
            s.used_pct += part
            if n > 1:
                s.error_pct += max(part, rise - part)
        if n > 1:
            out.mixed_pct += rise
        else:
            out.exact_pct += rise
    return out
