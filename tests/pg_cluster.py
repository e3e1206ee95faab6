"""A throw-away PostgreSQL cluster for the collector's tests, and `collector_db`: the one fixture that runs a
collector test on both engines.

    def test_something(collector_db):          # runs twice: [sqlite] and [postgresql]
        collector = Collector(collector_db).start()
        run_cli("collector", "report", "--db", str(collector_db))

`collector_db` is a fresh SQLite file path (Path) or a fresh database's postgresql:// URL (str). The cluster
is started once per test session (per xdist worker) from the distribution's binaries (initdb + pg_ctl,
/usr/lib/postgresql/*/bin or $AGENTMETER_PG_BIN), as a non-root user when run as root (PostgreSQL refuses
root): `postgres` (created by the Debian package) or `amother`, on a unix socket in a private temp dir, with
no TCP listener. Without the binaries or psycopg the [postgresql] cases skip, naming PostgreSQL.
`-k sqlite` / `-k postgresql` picks one engine.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ENGINES = ("sqlite", "postgresql")
_RUNNING: list[PgCluster] = []


def pg_bin() -> Path | None:
    if os.environ.get("AGENTMETER_PG_BIN"):
        return Path(os.environ["AGENTMETER_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("AGENTMETER_PG_USER"), "postgres", "amother"):
        if not name:
            continue
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(
        "running as root and neither a `postgres` nor an `amother` user exists to run PostgreSQL "
        "(set AGENTMETER_PG_USER)"
    )


class PgCluster:
    ROLE = "agentmeter"

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.user = _run_as()
        self.base = Path(tempfile.mkdtemp(prefix="agentmeter-pg-"))
        self.data = self.base / "data"
        self.port = 5432  # only names the socket file: there is no TCP listener
        self._n = itertools.count(1)
        if self.user is not None:
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        kw = {}
        if self.user is not None:
            kw = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self.base)}
        r = subprocess.run(args, capture_output=True, text=True, env=env, cwd=self.base, timeout=120, **kw)
        if r.returncode:
            log = (self.base / "log").read_text() if (self.base / "log").exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {r.stderr.strip()} {log[-2000:]}")
        return r

    @staticmethod
    def reap() -> None:
        """Stop the clusters of test runs that were killed before their teardown (their owner pid is gone)."""
        for base in glob.glob(os.path.join(tempfile.gettempdir(), "agentmeter-pg-*")):
            try:
                owner = int(Path(base, "owner.pid").read_text())
                os.kill(owner, 0)
                continue  # still running
            except ProcessLookupError:
                pass
            except (OSError, ValueError):
                continue  # not ours to judge (no owner file: being created, or unreadable)
            bin_dir = pg_bin()
            if bin_dir is not None and Path(base, "data", "postmaster.pid").exists():
                stale = PgCluster.__new__(PgCluster)
                stale.bin, stale.user, stale.base, stale.data = bin_dir, _run_as(), Path(base), Path(base, "data")
                try:
                    stale._run(str(bin_dir / "pg_ctl"), "-D", str(stale.data), "-m", "immediate", "-w", "stop")
                except (RuntimeError, OSError, subprocess.SubprocessError):
                    pass
            shutil.rmtree(base, ignore_errors=True)

    def start(self) -> PgCluster:
        (self.base / "owner.pid").write_text(str(os.getpid()))
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.ROLE,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        opts = (
            f"-k {self.base} -p {self.port} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.base / "log"),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.ROLE}@/{dbname}?host={self.base}&port={self.port}"

    def new_database(self) -> str:
        import psycopg

        name = f"collector_{os.getpid()}_{next(self._n)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dump(self, url: str) -> bytes:
        """Every byte the database holds, as pg_dump writes it (schema and data)."""
        dbname = url.split("/", 3)[3].split("?", 1)[0]
        return subprocess.run(
            [str(self.bin / "pg_dump"), "-h", str(self.base), "-p", str(self.port), "-U", self.ROLE, "-d", dbname],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout


@pytest.fixture(scope="session")
def pg_cluster():
    bin_dir = pg_bin()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        pytest.skip(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin; apt-get install postgresql, "
            "or set AGENTMETER_PG_BIN)"
        )
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL driver missing: pip install -e '.[postgres]' (psycopg, psycopg_pool)")
    PgCluster.reap()
    cluster = PgCluster(bin_dir).start()
    _RUNNING.append(cluster)
    yield cluster
    _RUNNING.remove(cluster)
    cluster.stop()


@pytest.fixture(params=ENGINES)
def collector_engine(request) -> str:
    return request.param


@pytest.fixture
def make_collector_db(request, collector_engine, tmp_path):
    """make_collector_db(name) → another fresh collector database on the same engine as `collector_db`."""

    def make(name: str = "team"):
        if collector_engine == "sqlite":
            return tmp_path / "collector" / f"{name}.db"
        return request.getfixturevalue("pg_cluster").new_database()

    return make


@pytest.fixture
def collector_db(make_collector_db):
    """A fresh, empty collector database on each engine: Path (SQLite) or postgresql:// URL (str)."""
    return make_collector_db("team")


def stored_bytes(db) -> bytes:
    """Everything the collector database holds on disk (SQLite: the files; PostgreSQL: a pg_dump of it), to
    check that a secret or a field never reached storage."""
    if isinstance(db, str):
        return _RUNNING[-1].dump(db)
    return b"".join(p.read_bytes() for p in Path(db).parent.glob(Path(db).name + "*"))
