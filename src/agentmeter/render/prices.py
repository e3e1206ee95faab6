"""`agentmeter prices explain|update` and `agentmeter reprice`."""

from __future__ import annotations

from . import emit_json, line, plural, usd


def price_explanation(payload: dict, as_json: bool) -> None:
    if as_json:
        emit_json("price_explain", payload)
        return
    line(payload["why"])
    tier = payload.get("tier") or "standard"
    line(f"  rates ({tier}, USD per million tokens):")
    for key in ("input", "output", "cache_read", "cache_write", "cache_write_1h"):
        if payload.get(key) is not None:
            line(f"    {key:<15} ${payload[key]:,.4f}")
    if payload.get("long_context_threshold"):
        lc = payload.get("long_context") or {}
        line(
            f"  over {payload['long_context_threshold']:,} prompt tokens the whole request bills at "
            f"${lc.get('input', 0):,.4f} in / ${lc.get('output', 0):,.4f} out"
        )
    for name, rates in (payload.get("tiers") or {}).items():
        src = f"  (correction: {rates['source']})" if rates.get("source") else ""
        line(f"  tier {name:<9} ${rates['input']:,.4f} in / ${rates['output']:,.4f} out{src}")
    for d in payload.get("dated") or []:
        line(f"  from {d['from'] or 'listing':<10} ${d['input']:,.4f} in / ${d['output']:,.4f} out")
    for c in payload.get("corrections") or []:
        when = f"prompt over {c['above']:,} tokens" if c.get("above") else f"tier {c.get('tier') or 'standard'}"
        line(f"  correction ({when}): ${c['input']:,.4f} in / ${c['output']:,.4f} out, from {c['source']}")
    for extra in ("matched_model", "source", "price_version"):
        if payload.get(extra):
            line(f"  {extra:<15} {payload[extra]}")
    data = payload.get("data") or {}
    if data:
        origin = data.get("url") or data.get("path") or "bundled with genai-prices"
        line(
            f"  price data      {data['source']}, {data['date']} (genai-prices {data['genai_prices_version']}; "
            f"{origin})"
        )
        if data.get("problem"):
            line(f"  warning         cached price data not used: {data['problem']}")
    if payload.get("unpriced"):
        line("  * marks costs of unpriced models in summaries: estimated or counted at a fallback rate")
    if payload.get("override_hint"):
        line(f"  override        {payload['override_hint']}")


def prices_update_result(payload: dict, as_json: bool) -> None:
    if as_json:
        emit_json("prices_update", payload)
        return
    a, b = payload["after"], payload["before"]
    if payload.get("dry_run"):
        line(f"price data from {payload['source']} is valid: {a['models']} models (dry run: nothing cached)")
        return
    line(
        f"price data updated from {payload['source']}: {a['models']} models, dated {a['date']} "
        f"(was {b['source']} data of {b['date']})"
    )
    line(payload["hint"])


def reprice_result(payload: dict, as_json: bool) -> None:
    if as_json:
        emit_json("reprice", payload)
        return
    verb = "would reprice" if payload.get("dry_run") else "repriced"
    line(
        f"{verb} {plural(payload['rows'], 'request')}; {payload['changed']} changed; "
        f"total {usd(payload['before_usd'])} → {usd(payload['after_usd'])}"
        + (" (dry run: nothing written)" if payload.get("dry_run") else "")
    )
    for m in payload.get("models") or []:
        line(f"  {m['model']}: {m['rows']} rows {usd(m['before_usd'])} → {usd(m['after_usd'])} ({m['source']})")
