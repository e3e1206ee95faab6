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

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, replace
from itertools import pairwise

OTHER = "other"


@dataclass(frozen=True, slots=True)
class Point:
    at_ms: int
    used_pct: float
    resets_at: int | None
    request_id: str | None = None  # the response that carried the reading


@dataclass(frozen=True, slots=True)
class Finished:
    session_id: str
    end_ms: int
    weight: float  # cost in USD, or tokens
    request_id: str | None = None


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
    """`points`: one window's readings in time order; `finished`: the account's requests.

    Times are whole milliseconds, so a request can finish in the same millisecond as a reading: a request
    is never counted before its own response's reading (it cannot have finished before its headers came)
    and each request counts once."""
    out = WindowShares()
    # A request cannot finish before the reading its own response carried; its end, rebuilt from whole
    # milliseconds (start + duration), can still round to just before it, which would lose it to `other`.
    read_at = {p.request_id: p.at_ms for p in points if p.request_id is not None}

    def not_before_its_reading(f: Finished) -> Finished:
        at = read_at.get(f.request_id) if f.request_id is not None else None
        return replace(f, end_ms=at) if at is not None and at > f.end_ms else f

    fin = sorted(map(not_before_its_reading, finished), key=lambda f: f.end_ms)
    ends = [f.end_ms for f in fin]
    used: set[int] = set()
    carry: list[int] = []  # a reading's own request, held over to the interval after it
    for p0, p1 in pairwise(points):
        weights: dict[str, float] = {}
        held, carry = carry, []
        for k in [*held, *range(bisect_left(ends, p0.at_ms), bisect_right(ends, p1.at_ms))]:
            f = fin[k]
            if k in used:
                continue
            if f.request_id is not None and f.request_id == p1.request_id:
                carry.append(k)
                continue
            used.add(k)
            weights[f.session_id] = weights.get(f.session_id, 0.0) + max(f.weight, 0.0)
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
