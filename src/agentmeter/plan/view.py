"""The `plan` section of status, report and the sync payload, built from stored readings. Pure: the
readings, snapshots and finished requests come in as data (ledger/plan.py reads them)."""

from __future__ import annotations

from datetime import UTC, datetime

from . import label
from .pace import forecast, window_seconds
from .shares import OTHER, Finished, Point, attribute


def iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds") if t else None


def points_of(snaps: list[dict], window: str) -> list[Point]:
    out = []
    for s in snaps:
        w = s["windows"].get(window)
        if w is not None:
            out.append(Point(int(s["at"]), float(w[0]), w[1], s.get("request_id")))
    return out


def build(
    latest: list[dict],
    snaps_by_account: dict[tuple[str, str], list[dict]],
    finished_by_key: dict[tuple[str, bool], list[dict]],
    now_s: float,
    lines: dict[str, float] | None = None,
    block_at: float = 1.10,
    alert_at: float = 0.80,
    downgrade_at: float = 0.95,
) -> list[dict]:
    """One entry per (provider, account, window), tightest first."""
    out = []
    for r in latest:
        key = (r["provider"], r["account"])
        snaps = snaps_by_account.get(key, [])
        used = 0.0 if (r["resets_at"] and now_s >= r["resets_at"]) else float(r["used_pct"])
        pts = [p for p in points_of(snaps, r["window"]) if p.resets_at == r["resets_at"]]
        pace = forecast(pts, now_s, window_seconds(r["window"], r["window_minutes"]))
        fin = [
            Finished(
                f["session_id"] or "",
                int(f["end_ms"]),
                float(f["cost_usd"] or 0.0) or float(f["tokens"] or 0),
                f["request_id"],
            )
            for f in finished_by_key.get((r["provider"], r["account"] != "api"), [])
        ]
        shares = attribute(pts, fin)
        line = (lines or {}).get(r["window"].rpartition(":")[2])
        entry = {
            "provider": r["provider"],
            "account": r["account"],
            "window": r["window"],
            "label": label(r["window"]),
            "used_pct": round(used, 2),
            "resets_at": iso(r["resets_at"]),
            "resets_in_s": max(0, int(r["resets_at"] - now_s)) if r["resets_at"] else None,
            "status": r["status"],
            "seen_at": iso(r["at"] / 1000),
            "line_pct": round(line * 100, 1) if line is not None else None,
            "stage": _stage(used, line, block_at, alert_at, downgrade_at),
            "pace": pace.as_dict(),
            "session_shares": sorted(
                (
                    {"session_id": sid, "used_pct": round(s.used_pct, 2), "error_pct": round(s.error_pct, 2)}
                    for sid, s in shares.by_session.items()
                    if sid != OTHER
                ),
                key=lambda x: -x["used_pct"],
            ),
            "other_pct": round(shares.by_session[OTHER].used_pct, 2) if OTHER in shares.by_session else 0.0,
            "estimated_pct": round(shares.mixed_pct, 2),
            "raw": r.get("raw") or {},
        }
        out.append(entry)
    out.sort(key=lambda e: -e["used_pct"])
    return out


def _stage(used_pct: float, line: float | None, block_at: float, alert_at: float, downgrade_at: float) -> str:
    """The same stages as a dollar cap, scaled so that the refusal starts at the line itself."""
    if line is None or line <= 0:
        return "ok"
    f = used_pct / 100 / line * block_at
    if f >= block_at:
        return "blocked"
    if f >= downgrade_at and downgrade_at < block_at:
        return "downgrade"
    if f >= alert_at:
        return "alert"
    return "ok"


def session_shares(plan: list[dict], session_id: str) -> list[dict]:
    """`this session used 12 % of your 5-hour window`: the session's part of each window."""
    out = []
    for e in plan:
        for s in e["session_shares"]:
            if s["session_id"] == session_id:
                out.append(
                    {
                        "provider": e["provider"],
                        "account": e["account"],
                        "window": e["window"],
                        "label": e["label"],
                        "used_pct": s["used_pct"],
                        "error_pct": s["error_pct"],
                    }
                )
    return out
