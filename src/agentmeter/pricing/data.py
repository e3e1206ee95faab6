"""Which price data is in force: genai-prices' bundled data, or a newer copy `agentmeter prices update`
fetched, validated and cached on disk (private modes). Everything that prices calls `snapshot()` first; it
stats the cache file and reloads it when it changed, so a running daemon picks up an update without a
restart (a stat per lookup costs about a microsecond).

The cache holds genai-prices' own data format (the provider array its `UpdatePrices` fetches from
`DEFAULT_UPDATE_URL`), so `--url`/`--file` accept the maintained data or a fork of it. Only the providers
agentmeter meters are kept in memory (`KEEP`), the rest of the file is dropped before validation.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

KEEP = ("anthropic", "openai", "google")
# A probe every accepted data set must price: refusing data that cannot price the models agentmeter meters
# most keeps a truncated or wrong file from replacing good data.
_PROBES = (("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-5"))
_MAX_BYTES = 64 * 1024 * 1024


class PriceDataError(ValueError):
    """Price data that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class DataInfo:
    """Where the prices in force come from (shown by `prices explain` and `doctor`)."""

    source: str  # `bundled` or `cache`
    genai_prices_version: str
    date: str  # ISO date: when the cached data was fetched, or the bundled data's release file date
    url: str | None = None
    path: str | None = None
    models: int = 0
    sha256: str | None = None
    problem: str | None = None  # a cache file that could not be loaded (the bundled data is used)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_loaded: dict[str, Any] = {"key": None, "path": None, "info": None}


def cache_path() -> Path:
    from ..home.paths import get_paths

    return get_paths().data_dir / "prices.json"


def meta_path(path: Path) -> Path:
    return path.with_name("prices.meta.json")


# The environment `cache_path()` and `compact_path()` depend on (AGENTMETER_HOME; platformdirs' XDG_* and HOME).
_PATH_ENV = ("AGENTMETER_HOME", "XDG_DATA_HOME", "HOME", "XDG_CACHE_HOME")  # the last: compact_path
_path_memo: dict[str, Any] = {"env": None, "path": None, "str": ""}


def _current_path() -> tuple[Path, str]:
    """`cache_path()`, recomputed only when the environment it depends on changed: building it costs ~13 µs
    (get_paths, Path joins) and `snapshot()` runs twice per proxied request."""
    env = tuple(map(os.environ.get, _PATH_ENV))
    if env != _path_memo["env"]:
        path = cache_path()
        _path_memo.update(env=env, path=path, str=str(path))
    return _path_memo["path"], _path_memo["str"]


def snapshot() -> Any:
    """genai-prices' DataSnapshot in force, reloading the cache when its file changed. One `os.stat` of a
    remembered path per call (~1-2 µs): an update by `prices update` in another process is in force for the
    very next request, as before."""
    from genai_prices import data_snapshot

    path, name = _current_path()
    try:
        st = os.stat(name)
        key: Any = (name, st.st_mtime_ns, st.st_size)
    except OSError:
        key = (name, None)
    if key != _loaded["key"]:
        _install(path, key)
    return data_snapshot.get_snapshot()


_compact: dict[str, Any] = {"stat": (), "table": None, "key": None}


def compact_path(key: dict[str, Any]) -> Path:
    """Where the compact table for `key` lives: beside the cached data when `prices update` wrote some, else
    (the bundled data, the same for every AGENTMETER_HOME) in the user's cache dir, named by the key."""
    if key.get("cache") is not None:
        return cache_path().with_name("prices.compact.json")
    import platformdirs

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(platformdirs.user_cache_dir("agentmeter", appauthor=False)) / f"prices-compact-{digest}.json"


def compact_table() -> Any:
    """The compact table (`compact.Table`) for the data in force, or None (then genai-prices prices).
    Never imports genai-prices: one `os.stat` of the cache file per call; the table file is read again only
    when that changed."""
    from . import compact

    _, name = _current_path()
    st = compact.stat_of(name)
    state = (_path_memo["env"], st)
    if state != _compact["stat"]:
        key = compact.data_key(st)
        table = compact.load(compact_path(key), key)
        _compact.update(stat=state, table=table, key=key)
    return _compact["table"]


def ensure_compact(timeout: float = 120.0) -> Any:
    """`compact_table()`, building the table first in a child process when it is missing or stale (the
    child loads genai-prices, this process does not). None when it cannot be built."""
    table = compact_table()
    if table is not None:
        return table
    import subprocess
    import sys

    try:
        subprocess.run(
            [sys.executable, "-m", "agentmeter.pricing.compact_build"],
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    _compact["stat"] = ()
    return compact_table()


def info() -> DataInfo:
    snapshot()
    return _loaded["info"]


def _install(path: Path, key: Any) -> None:
    from genai_prices import data_snapshot

    problem = None
    if key[1] is not None:
        try:
            raw = path.read_bytes()
            snap = _validated(raw)
            data_snapshot.set_custom_snapshot(snap)
            meta = _read_meta(path)
            _loaded.update(
                key=key,
                info=DataInfo(
                    "cache",
                    _gp_version(),
                    meta.get("date") or _mtime_date(path),
                    url=meta.get("url"),
                    path=str(path),
                    models=_count(snap),
                    sha256=hashlib.sha256(raw).hexdigest(),
                ),
            )
            return
        except (OSError, PriceDataError) as e:
            problem = f"{path}: {e}"
    data_snapshot.set_custom_snapshot(None)
    import genai_prices

    _loaded.update(
        key=key,
        info=DataInfo(
            "bundled",
            _gp_version(),
            _mtime_date(Path(genai_prices.__file__)),
            models=_count(data_snapshot.get_snapshot()),
            problem=problem,
        ),
    )


def _validated(raw: bytes) -> Any:
    """A DataSnapshot from genai-prices' provider array, or PriceDataError saying what is wrong."""
    from genai_prices import data_snapshot
    from genai_prices.types import _providers_from_raw

    if len(raw) > _MAX_BYTES:
        raise PriceDataError(f"price data is {len(raw):,} bytes, more than {_MAX_BYTES:,}")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise PriceDataError(f"price data is not JSON ({e})") from None
    if not isinstance(payload, list):
        raise PriceDataError("price data is not genai-prices' provider array (a JSON list)")
    wanted = [p for p in payload if isinstance(p, dict) and p.get("id") in KEEP]
    missing = [p for p in KEEP[:2] if p not in {w.get("id") for w in wanted}]
    if missing:
        raise PriceDataError(f"price data has no {' or '.join(missing)} prices")
    try:
        providers = _providers_from_raw(wanted)
    except Exception as e:  # pydantic's ValidationError: the first line says which field
        raise PriceDataError(f"price data does not validate: {str(e).splitlines()[0]}") from None
    snap = data_snapshot.DataSnapshot(providers, from_auto_update=False)
    for provider, model in _PROBES:
        try:
            from genai_prices.types import Usage

            calc = snap.calc(Usage(input_tokens=1000, output_tokens=1000), model, provider, None, None)
        except (LookupError, ValueError) as e:
            raise PriceDataError(f"price data cannot price {provider}:{model} ({e})") from None
        if not calc.total_price > 0:
            raise PriceDataError(f"price data prices {provider}:{model} at $0")
    return snap


def update(raw: bytes, *, url: str | None, date: str, path: Path | None = None) -> DataInfo:
    """Validate `raw` and make it the cached price data. Bad data raises PriceDataError and the data in
    force stays as it was."""
    from ..home.paths import write_private

    snap = _validated(raw)
    path = path or cache_path()
    write_private(meta_path(path), json.dumps({"url": url, "date": date}))
    write_private(path, raw)
    _loaded["key"] = None  # the next lookup reloads
    _compact["stat"] = ()
    try:  # the daemon's compact table for the new data, so a running daemon keeps pricing without genai-prices
        from ..core.clock import SystemClock
        from . import compact_build

        compact_build.write(compact_build.build(SystemClock().now()))
    except Exception:  # the daemon then prices the new data through genai-prices in process
        pass
    del snap
    return info()


def fetch(url: str, timeout: float = 30.0) -> bytes:
    """GET `url` (http, https or file). OSError on a network failure."""
    from urllib.request import Request, urlopen

    if not url.startswith(("http://", "https://", "file://")):
        raise PriceDataError(f"unsupported price data URL {url!r} (use http, https or file)")
    req = Request(url, headers={"User-Agent": "agentmeter prices update"})
    with urlopen(req, timeout=timeout) as resp:
        return resp.read(_MAX_BYTES + 1)


def default_url() -> str:
    from genai_prices.update_prices import DEFAULT_UPDATE_URL

    return DEFAULT_UPDATE_URL


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(meta_path(path).read_text())
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def _mtime_date(path: Path) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(os.stat(path).st_mtime, UTC).date().isoformat()


def _count(snap: Any) -> int:
    return sum(len(p.models) for p in snap.providers if p.id in KEEP)


def _gp_version() -> str:
    import genai_prices

    return genai_prices.__version__
