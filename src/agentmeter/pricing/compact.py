"""The daemon's price table: genai-prices' data for the providers agentmeter meters, compiled into plain
Python (`compact_build`), so the proxy prices a request without importing genai-prices, pydantic and the
httpx they pull in (~27 MB resident of the daemon's ~66 MB).

The table is built from the price data in force (`pricing.data`: the bundled data or the cache `prices
update` wrote) and stored beside it (`prices.compact.json`, 0600), keyed by what it was built from: the cache
file's (mtime, size), genai-prices' version, agentmeter's corrections and this format. A table whose key is
not the current one is never used.

What it holds, per provider: each model's match rule (genai-prices' clauses, as JSON) and, per tier, its
price as *pieces* over the prompt size: `[upper, kind, ...]` where the prompt (uncached + cache reads + cache
writes) is at most `upper` (None: any). `kind` is `"a"` — genai-prices' total is exactly
`(c + Σ t_i · n_i) / scale` over `(uncached, cache read, 5m write, 1h write, output, web searches)`, learned by
probing genai-prices and checked at every tier boundary by `compact_build` — or `"r"`, an agentmeter
correction billed at list rates (`tiers.CORRECTIONS`). A tier, model or usage the table does not cover
(time-of-day prices, a request dated before the prices in force, non-integer counts, an unknown provider) is
answered by genai-prices itself, as before: `lookup` returns None.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

FORMAT = 1
_COMPACT_DATE_RE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")
TIER_KEYS = ("", "fast", "priority", "flex", "batch")  # "" is standard


def table_path(cache: Path) -> Path:
    return cache.with_name("prices.compact.json")


def corrections_digest() -> str:
    """Changes when agentmeter's correction layer changes: a table built before is then stale."""
    import hashlib

    from . import tiers

    return hashlib.sha256(repr(tiers.CORRECTIONS).encode()).hexdigest()[:16]


def genai_prices_version() -> str | None:
    """The installed genai-prices' version, read from its metadata (no import of the package)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genai-prices")
    except PackageNotFoundError:
        return None


def data_key(cache_stat: tuple[int, int] | None) -> dict[str, Any]:
    """What a table must have been built from to price with the data in force."""
    return {
        "format": FORMAT,
        "cache": list(cache_stat) if cache_stat else None,
        "genai_prices": genai_prices_version(),
        "corrections": corrections_digest(),
    }


class Table:
    """A loaded compact table (see the module docstring)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.key = raw["key"]
        self.version: str = raw["version"]
        self.providers: dict[str, dict[str, Any]] = raw["providers"]
        self.unknown_fallback: list[float] = raw["unknown_fallback"]
        self._found: dict[tuple[str, str], Any] = {}
        self._view: list[Any] | None = None
        self._starts: dict[str, date] = {}

    def estimate_view(self) -> list[Any]:
        """The providers and models as `estimate.nearest` reads them (ids and input rates)."""
        if self._view is None:
            from types import SimpleNamespace as NS

            self._view = [
                NS(id=pid, models=[NS(id=m["id"], prices=NS(input_mtok=m["input_rate"])) for m in p["models"]])
                for pid, p in self.providers.items()
            ]
        return self._view

    def known_provider(self, provider: str) -> bool:
        return provider in self.providers

    def find(self, provider: str, ref: str) -> dict[str, Any] | None:
        """genai-prices' `find_model` for `ref` (already without a `provider/` prefix); None: no match.
        Raises KeyError when the provider is not in the table (genai-prices decides)."""
        key = (provider, ref)
        try:
            return self._found[key]
        except KeyError:
            pass
        p = self.providers[provider]
        low = ref.lower()
        found = self._match(p, low)
        if found is None:
            normalized = _COMPACT_DATE_RE.sub(_dashed, low)
            if normalized != low:
                found = self._match(p, normalized)
        if len(self._found) > 1024:
            self._found.clear()
        self._found[key] = found
        return found

    def _match(self, p: dict[str, Any], ref: str) -> dict[str, Any] | None:
        for m in p["models"]:
            if _is_match(m["match"], ref):
                return m
        for fallback in p.get("fallbacks") or ():
            other = self.providers.get(fallback)
            if other is None:
                raise KeyError(fallback)  # a fallback provider outside the table: genai-prices decides
            for m in other["models"]:
                if _is_match(m["match"], ref):
                    return m
        return None

    def pieces(self, model: dict[str, Any], tier: str | None, at: datetime | None) -> list[Any] | None:
        """The model's pieces at `tier`, or None when genai-prices must answer (not covered, or `at` is
        before the prices in force)."""
        entry = model["tiers"].get(tier or "")
        if entry is None:
            return None
        since = entry["from"]
        if since is not None and at is not None:
            if at.tzinfo is not None:
                at = at.astimezone(UTC)
            start = self._starts.get(since)
            if start is None:
                start = self._starts[since] = date.fromisoformat(since)
            if at.date() < start:
                return None
        return entry["pieces"]


def usd_of(pieces: list[Any], counts: tuple[int, ...]) -> tuple[str, Any] | None:
    """("a", exact units / scale) or ("r", rates, web search USD) for `counts`; None: not covered."""
    prompt = counts[0] + counts[1] + counts[2] + counts[3]
    for piece in pieces:
        upper = piece[0]
        if upper is not None and prompt > upper:
            continue
        if piece[1] == "a":
            terms, scale = piece[2], piece[3]
            units = terms[0] + sum(t * n for t, n in zip(terms[1:], counts, strict=True))
            # int / int is correctly rounded, as float(Decimal) is: the same exact total gives the same float.
            return "a", max(round(units / scale, 9), 0.0)
        if piece[1] == "r":
            return "r", (piece[2], piece[3])
        return None
    return None


def load(path: Path, key: dict[str, Any]) -> Table | None:
    """The table at `path` when it was built from `key`'s data, else None."""
    try:
        with open(path, "rb") as f:
            raw = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("key") != key:
        return None
    try:
        return Table(raw)
    except (KeyError, TypeError):
        return None


def _dashed(match: re.Match[str]) -> str:
    year, month, day = (int(match.group(i)) for i in range(2, 5))
    try:
        date(year, month, day)
    except ValueError:
        return match.group(0)
    return f"{match.group(1)}{year:04d}-{month:02d}-{day:02d}"


def _is_match(clause: Any, text: str) -> bool:
    """genai-prices' match clauses: starts_with, ends_with, contains, regex, equals, or, and."""
    kind, value = clause
    if kind == "starts_with":
        return text.lower().startswith(value.lower())
    if kind == "ends_with":
        return text.lower().endswith(value.lower())
    if kind == "contains":
        return value.lower() in text.lower()
    if kind == "equals":
        return text.lower() == value.lower()
    if kind == "regex":
        return bool(re.search(value, text))
    if kind == "or":
        return any(_is_match(c, text) for c in value)
    if kind == "and":
        return all(_is_match(c, text) for c in value)
    raise ValueError(f"unknown match clause {kind!r}")


def stat_of(path: Path | str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
