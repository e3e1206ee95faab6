"""Where agentmeter keeps its files: one AGENTMETER_HOME override, else the platform's directories.

Directories are created 0700 and files 0600: the ledger holds no secrets, but it does hold who worked on
which repo when, and the runtime dir holds the daemon's control token.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

APP = "agentmeter"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    state_dir: Path
    runtime_dir: Path
    log_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def ledger(self) -> Path:
        return self.data_dir / "ledger.db"

    @property
    def credentials(self) -> Path:
        return self.config_dir / "credentials.toml"

    @property
    def pid_file(self) -> Path:
        return self.runtime_dir / "proxy.pid"

    @property
    def port_file(self) -> Path:
        return self.runtime_dir / "proxy.port"

    @property
    def control_token_file(self) -> Path:
        return self.runtime_dir / "control.token"

    @property
    def listener_socket(self) -> Path:
        """Unix socket on which the daemon hands its listening TCP socket to `run` wrappers (SCM_RIGHTS)."""
        return self.runtime_dir / "listener.sock"

    @property
    def lock_file(self) -> Path:
        return self.runtime_dir / "proxy.lock"

    @property
    def daemon_log(self) -> Path:
        return self.log_dir / "proxy.log"

    def ensure(self) -> Paths:
        for d in {self.config_dir, self.data_dir, self.state_dir, self.runtime_dir, self.log_dir}:
            ensure_private_dir(d)
        return self


def get_paths() -> Paths:
    home = os.environ.get("AGENTMETER_HOME")
    if home:
        root = Path(home).expanduser()
        return Paths(root, root, root / "state", root / "run", root / "log")
    import platformdirs

    dirs = platformdirs.PlatformDirs(APP, appauthor=False)
    state = Path(dirs.user_state_dir)
    # Without XDG_RUNTIME_DIR (containers, CI) platformdirs falls back to /tmp/runtime-<uid> with a
    # warning; the state dir is private and always there, so use it instead.
    runtime = Path(os.environ["XDG_RUNTIME_DIR"]) / APP if os.environ.get("XDG_RUNTIME_DIR") else state / "run"
    return Paths(Path(dirs.user_config_dir), Path(dirs.user_data_dir), state, runtime, Path(dirs.user_log_dir))


def ensure_private_dir(path: Path, *, tighten: bool = True) -> None:
    """Create `path` 0700, or tighten it to 0700. A directory someone else owns (or a symlink planted to
    one) cannot be made private: refused.

    `tighten=False` is for the directory of a file the user named (a ledger or collector --db, an output
    path): it is created private when missing but an existing one is left as it is. A shared directory with
    the sticky bit (/tmp) is never tightened either: run as root, that chmod took /tmp away from every
    other user of the machine."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if not tighten or st.st_mode & stat.S_ISVTX:
        return
    if st.st_uid != os.getuid():
        from ..core.errors import PermissionsError

        raise PermissionsError(
            f"{path} belongs to another user (uid {st.st_uid}); agentmeter will not keep its files there",
            "set AGENTMETER_HOME to a directory of your own",
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)


def secure_files(paths: Paths) -> list[Path]:
    """Tighten every file in agentmeter's directories to 0600 (run at daemon start). Returns the files that
    were fixed. The credentials file is left alone: a key file others could read is refused, not silently
    fixed (the key may already be out), by `secrets`."""
    fixed = []
    for d in {paths.config_dir, paths.data_dir, paths.state_dir, paths.runtime_dir, paths.log_dir}:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or Path(e.path) == paths.credentials or st.st_uid != os.getuid():
                continue
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(e.path, 0o600)
                fixed.append(Path(e.path))
    return fixed


def write_private(path: Path, data: str | bytes) -> None:
    """Write one of agentmeter's own private files (tokens, keys, config): atomically, 0600 or stricter,
    in a directory made private."""
    ensure_private_dir(path.parent)
    atomic_write(path, data, private=True)


def atomic_write(path: Path, data: str | bytes, *, private: bool = False, like: Path | None = None) -> None:
    """Replace `path` with `data` atomically, the one way agentmeter writes any file.

    An existing file keeps its mode and owner (a 0600 ~/.claude/settings.json holding a key stays 0600);
    a new file is 0600 unless `like` names a file whose mode and owner it copies (a backup). `private`
    never lets group or other bits through. A symlink is followed, so a dotfile manager's link survives.
    """
    with atomic_open(path, "wb", private=private, like=like) as f:
        f.write(data.encode() if isinstance(data, str) else data)


@contextlib.contextmanager
def atomic_open(
    path: Path | str, mode: str = "w", *, private: bool = False, like: Path | None = None, **kw
) -> Iterator[IO]:
    """A file object for writing `path` through a temp file in the same directory, renamed over it on
    success (discarded on error); mode and owner as atomic_write says."""
    target = Path(os.path.realpath(path))
    try:
        st: os.stat_result | None = os.stat(like if like is not None else target)
    except FileNotFoundError:
        st = None
    perm = stat.S_IMODE(st.st_mode) if st else 0o600
    if private:
        perm &= 0o700
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, perm)
        if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(fd, st.st_uid, st.st_gid)
            except PermissionError:
                # Someone else's file we may write but not re-own (a group-writable file): rewrite it in
                # place, which keeps its owner, rather than hand it to us.
                os.close(fd)
                fd = -1
                os.unlink(tmp)
                with open(target, mode, **kw) as f:
                    yield f
                return
        with os.fdopen(fd, mode, **kw) as f:
            fd = -1
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def make_private(path: Path) -> None:
    if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)


def storage_problem(paths: Paths | None = None) -> tuple[Path, str] | None:
    """The first of agentmeter's directories it cannot create or write, with why (None when all is well).

    Nothing is created: the nearest existing ancestor of each directory is probed with a temporary file,
    which also catches a read-only file system and a directory only root could write."""
    import tempfile

    p = paths or get_paths()
    for d in dict.fromkeys((p.config_dir, p.data_dir, p.state_dir, p.runtime_dir, p.log_dir)):
        probe = d
        while not os.path.lexists(probe) and probe.parent != probe:
            probe = probe.parent
        if not probe.is_dir():
            return probe, "is a file, not a directory"
        try:
            fd, name = tempfile.mkstemp(dir=probe, prefix=".agentmeter-probe-")
        except OSError as exc:
            return probe, _why(exc)
        os.close(fd)
        os.unlink(name)
    return None


def _why(exc: OSError) -> str:
    import errno

    return {
        errno.EROFS: "is on a read-only file system",
        errno.EACCES: "is not writable (permission denied)",
        errno.EPERM: "is not writable (operation not permitted)",
        errno.ENOSPC: "is on a full disk",
        errno.ENOTDIR: "is a file, not a directory",
    }.get(exc.errno, f"cannot be written ({exc.strerror})")


def storage_error(problem: tuple[Path, str]):
    """The one-line error for `storage_problem`'s answer, with the fix."""
    from ..core.errors import PermissionsError

    path, why = problem
    if os.environ.get("AGENTMETER_HOME"):
        hint = "set AGENTMETER_HOME to a directory you can write, or unset it"
    elif "file" in why:
        hint = f"move the file {path} out of the way"
    else:
        hint = f"make it writable (chmod u+rwx {path}) or set AGENTMETER_HOME to a directory you can write"
    return PermissionsError(f"cannot keep agentmeter's files under {path}: it {why}", hint)


def os_error(exc: OSError):
    """An OSError on a path the user named (an output file, …) as a one-line error, or None."""
    import errno

    from ..core.errors import AgentmeterError

    if not exc.filename:
        return None
    path = Path(os.fsdecode(exc.filename))
    if exc.errno == errno.ENOENT:  # named by its folder: the file may be a temporary one beside the target
        return AgentmeterError(
            f"the folder {path.parent} does not exist",
            f"create it first (mkdir -p {path.parent}) or choose another path",
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return AgentmeterError(f"{path}: {exc.strerror}", "a file or folder is in the way; choose another path")
    return AgentmeterError(
        f"cannot write {path}: {_why(exc).removeprefix('is ').removeprefix('cannot be written ')}",
        "choose a path you can write, or fix its permissions",
    )


def as_storage_error(exc: BaseException):
    """An unwritable or wrong AGENTMETER_HOME, or an output path that cannot be written, as the one-line
    error a person can act on (not "internal error"); None for anything else."""
    if not isinstance(exc, OSError) and type(exc).__module__ != "sqlite3":
        return None
    try:
        problem = storage_problem()
    except Exception:
        problem = None
    if problem is not None:
        return storage_error(problem)
    return os_error(exc) if isinstance(exc, OSError) else None
