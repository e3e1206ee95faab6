"""The per-user daemon: start (detached, one at a time), serve, stop, status.

State lives in the runtime dir: `proxy.pid`, `proxy.port`, `control.token` (0600) and a lock file so
two simultaneous launches start one daemon. Stale files (a dead pid) are recovered. The CLI side of
this module uses only the standard library, so `proxy status` stays fast.

The port is a credential boundary: an agent sends its key (passthrough) or its session token to whatever
listens there. So the listening socket outlives the daemon process while a session names it: the daemon
hands a copy of it to every `run` wrapper over `listener.sock` (a unix socket in the 0700 runtime dir,
SCM_RIGHTS), and a wrapper that sees the daemon die restarts it with that same socket inherited
(AGENTMETER_LISTEN_FD, as socket activation does). While any copy is open the port stays bound and
listening: no other user can bind it, and the agent's connections queue in the backlog for the restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

from ..core.errors import DaemonError
from ..home.paths import Paths, get_paths, write_private

START_TIMEOUT = 15.0
PORT_TRIES = 20
LISTEN_FD_ENV = "AGENTMETER_LISTEN_FD"  # the listening socket a restarted daemon inherits
HANDOVER_GRACE = 1.0  # s a fresh start waits for the wrappers holding a crashed daemon's port
BACKLOG = 512  # connections that queue while a crashed daemon is restarted on the same socket
HOME_CHECK_S = 5.0  # how often the daemon checks that its ledger is still the file at its path


@dataclass(frozen=True)
class DaemonInfo:
    running: bool
    pid: int | None = None
    port: int | None = None
    version: str | None = None

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    def as_dict(self) -> dict:
        return {"running": self.running, "pid": self.pid, "port": self.port, "url": self.url, "version": self.version}


def _read_int(path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def read_pid(paths: Paths | None = None) -> int | None:
    return _read_int((paths or get_paths()).pid_file)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        # A daemon this process started (demo, run) is our child: reap it, or it lingers as a zombie
        # that kill(pid, 0) still reports alive.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """An exited process whose parent (often a container's init) has not reaped it yet."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _http(
    port: int, method: str, path: str, body: bytes | None = None, token: str | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """A minimal HTTP/1.0 exchange with our own daemon on loopback. urllib would add ~12 ms of imports to
    every `agentmeter run`, and this is all the control API needs."""
    head = [
        f"{method} {path} HTTP/1.0",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body or b'')}",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    try:
        return int(status_line.split()[1]), payload
    except (IndexError, ValueError):
        raise OSError(f"bad HTTP answer from 127.0.0.1:{port}") from None


def health(port: int, timeout: float = 1.0, paths: Paths | None = None) -> dict | None:
    """The daemon's health; its details (pid, metering state) only for the owner of the control token."""
    try:
        token = (paths or get_paths()).control_token_file.read_text().strip()
    except OSError:
        token = None
    try:
        code, payload = _http(port, "GET", "/_agentmeter/v1/health", token=token, timeout=timeout)
        return json.loads(payload) if code == 200 else None
    except (OSError, ValueError):
        return None


def status(paths: Paths | None = None) -> DaemonInfo:
    paths = paths or get_paths()
    pid, port = _read_int(paths.pid_file), _read_int(paths.port_file)
    if not pid_alive(pid) or port is None:
        return DaemonInfo(False)
    h = health(port, paths=paths)
    if not h or h.get("pid") != pid:
        return DaemonInfo(False, pid=pid, port=port)
    return DaemonInfo(True, pid=pid, port=port, version=h.get("version"))


def control_token(paths: Paths | None = None) -> str:
    paths = paths or get_paths()
    try:
        return paths.control_token_file.read_text().strip()
    except OSError:
        raise DaemonError(
            "the proxy's control token is missing", "restart it: agentmeter proxy stop && agentmeter proxy start"
        ) from None


def control(path: str, payload: dict, info: DaemonInfo, paths: Paths | None = None, timeout: float = 10) -> dict:
    """POST to the daemon's control API."""
    if info.port is None:
        raise DaemonError("the proxy is not running", "run: agentmeter proxy start")
    try:
        code, body = _http(info.port, "POST", path, json.dumps(payload).encode(), control_token(paths), timeout)
    except OSError as exc:
        raise DaemonError(f"could not reach the proxy at {info.url}: {exc}", "run: agentmeter proxy start") from None
    if code != 200:
        raise DaemonError(f"the proxy refused {path}: HTTP {code}", "see: agentmeter proxy status")
    return json.loads(body)


@contextlib.contextmanager
def _start_lock(paths: Paths):
    paths.ensure()
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def ensure_running(
    paths: Paths | None = None, port: int | None = None, listener: socket.socket | None = None
) -> tuple[DaemonInfo, bool]:
    """The running daemon, starting one if needed. Returns (info, started_now). A daemon started here
    serves on `listener` when given (the socket a wrapper held while the previous daemon was dead)."""
    paths = paths or get_paths()
    info = status(paths)
    if info.running:
        return info, False
    if listener is None:
        _defer_to_holders(paths)
    with _start_lock(paths):
        info = status(paths)  # someone else may have started it while we waited for the lock
        if info.running:
            return info, False
        return _spawn(paths, port, listener), True


def _defer_to_holders(paths: Paths) -> None:
    """A daemon that died while sessions ran leaves its port bound by their wrappers, which restart it on
    that socket within milliseconds. A daemon started here instead would have to take another port, and
    those sessions would be stopped: give the holders a moment (HANDOVER_GRACE) to take the start lock."""
    port = _read_int(paths.port_file)
    if not port or pid_alive(_read_int(paths.pid_file)) or not _port_bound(port):
        return
    deadline = time.monotonic() + HANDOVER_GRACE
    while time.monotonic() < deadline:
        if status(paths).running or _lock_taken(paths):
            return  # started, or being started: the lock makes us wait for it
        time.sleep(0.02)


def _port_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _lock_taken(paths: Paths) -> bool:
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if we got it
    return False


def _spawn(paths: Paths, port: int | None, listener: socket.socket | None = None) -> DaemonInfo:
    for stale in (paths.pid_file, paths.port_file):
        stale.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "agentmeter", "proxy", "serve", "--quiet"]
    env: dict[str, str] | None = None
    pass_fds: tuple[int, ...] = ()
    if listener is not None:
        # Same fd number in the child (pass_fds keeps numbers); only the number travels, never a secret.
        env, pass_fds = {**os.environ, LISTEN_FD_ENV: str(listener.fileno())}, (listener.fileno(),)
    elif port is not None:
        cmd += ["--port", str(port)]
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    # Created 0600 (never a moment at the umask's 0644); appended to in place, so it keeps its owner.
    log = os.fdopen(os.open(paths.log_dir / "proxy.stderr", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    os.chmod(log.fileno(), 0o600)
    log_start = log.tell()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
        pass_fds=pass_fds,
        env=env,
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            why = _last_line(paths.log_dir / "proxy.stderr", log_start)
            raise DaemonError(
                f"the proxy exited during start-up (code {proc.returncode})" + (f": {why}" if why else ""),
                f"see {paths.log_dir / 'proxy.stderr'} and {paths.daemon_log}",
            )
        info = status(paths)
        if info.running:
            return info
        time.sleep(0.02)
    raise DaemonError("the proxy did not answer within 15 s", f"see {paths.daemon_log}")


def _last_line(path, offset: int) -> str | None:
    """The daemon's own one-line reason (it writes `agentmeter: …` last), if it left one."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            lines = [ln.strip() for ln in f.read(65536).decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    last = lines[-1] if lines else ""
    return last.removeprefix("agentmeter: ") if last.startswith("agentmeter: ") else None


def stop(paths: Paths | None = None, timeout: float = 10) -> DaemonInfo:
    paths = paths or get_paths()
    info = status(paths)
    pid = info.pid
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    for f in (paths.pid_file, paths.port_file):
        f.unlink(missing_ok=True)
    return info


def bind_listener(wanted: int) -> socket.socket:
    """A listening socket on 127.0.0.1:`wanted` if free, else the next free port (0: any). Bound and
    listening in one step: there is no moment between choosing the port and holding it."""
    ports = [0] if wanted == 0 else list(range(wanted, min(wanted + PORT_TRIES, 65536)))
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Connections of a killed daemon linger in TIME-WAIT; SO_REUSEADDR lets a fresh daemon take the port.
        # Never SO_REUSEPORT: with it another socket of the same uid could share the port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
            s.listen(BACKLOG)
        except OSError:
            s.close()
            continue
        return s
    raise DaemonError(
        f"ports {wanted}–{wanted + PORT_TRIES - 1} are all in use",
        "set another with AGENTMETER_PORT=<port> or [proxy] port in config",
    )


def inherited_listener() -> socket.socket | None:
    """The listening socket handed down by the wrapper that restarted us, if any (checked: TCP, 127.0.0.1,
    listening)."""
    raw = os.environ.pop(LISTEN_FD_ENV, "")
    if not raw.isdigit():
        return None
    try:
        s = socket.socket(fileno=int(raw))
    except OSError:
        return None
    s.set_inheritable(False)
    try:
        ok = (
            s.family == socket.AF_INET
            and s.type == socket.SOCK_STREAM
            and s.getsockname()[0] == "127.0.0.1"
            and s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        )
    except OSError:
        ok = False
    if not ok:
        s.close()
        return None
    return s


def _unix_address(path) -> tuple[str, int | None]:
    """A unix socket address for `path`; sun_path holds 107 bytes, so a deep runtime dir (a test's tmp
    dir) is reached through /proc/self/fd/<dir fd>. Returns (address, dir fd to close or None)."""
    if len(os.fsencode(str(path))) < 100:
        return str(path), None
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{dfd}/{path.name}", dfd


def _peer_uid(conn: socket.socket) -> int:
    return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]


def offer_listener(paths: Paths, listener: socket.socket):
    """Serve copies of `listener` on paths.listener_socket to processes of this user (SO_PEERCRED)."""
    import threading

    paths.listener_socket.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address, dfd = _unix_address(paths.listener_socket)
    try:
        server.bind(address)
    finally:
        if dfd is not None:
            os.close(dfd)
    os.chmod(paths.listener_socket, 0o600)
    server.listen(64)

    def hand_out() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                try:
                    if _peer_uid(conn) == os.getuid():
                        socket.send_fds(conn, [b"L"], [listener.fileno()])
                except OSError:
                    pass

    threading.Thread(target=hand_out, name="agentmeter-listener", daemon=True).start()
    return server


def hold_listener(info: DaemonInfo, paths: Paths | None = None) -> socket.socket | None:
    """A copy of the running daemon's listening socket, or None (a daemon of an older version, or it just
    died). While the copy is open the port cannot be taken by anyone else."""
    paths = paths or get_paths()
    if not info.port:
        return None
    try:
        address, dfd = _unix_address(paths.listener_socket)
    except OSError:
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(2)
            c.connect(address)
            if _peer_uid(c) != os.getuid():  # only the daemon of this user may hand us a socket
                return None
            _, fds, _, _ = socket.recv_fds(c, 16, 4, socket.MSG_CMSG_CLOEXEC)
    except OSError:
        return None
    finally:
        if dfd is not None:
            os.close(dfd)
    got = None
    for fd in fds:
        s = socket.socket(fileno=fd)
        try:
            ok = got is None and s.type == socket.SOCK_STREAM and s.getsockname() == ("127.0.0.1", info.port)
        except OSError:
            ok = False
        if ok:
            got = s
        else:
            s.close()
    return got


def event_loop_factory():
    """uvloop when it is installed (Linux and macOS: about a fifth less CPU per relayed request), unless
    AGENTMETER_EVENT_LOOP=asyncio asks for the standard loop; None means asyncio's own."""
    if os.environ.get("AGENTMETER_EVENT_LOOP", "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def serve(port: int | None = None, quiet: bool = False) -> None:
    """Run the daemon in the foreground until SIGTERM/SIGINT."""
    import asyncio
    import logging
    import logging.handlers

    from aiohttp import web

    from ..core.clock import SystemClock
    from ..core.timezone import resolve_tz
    from ..home.config import load_config
    from ..home.paths import secure_files
    from ..ledger.read import DatabaseError
    from .app import ProxyState, create_app

    os.umask(0o077)  # every file the daemon creates (ledger WAL, rotated logs) is private from the start
    import resource

    # A core dump of the daemon would hold the real keys and the prompts in flight: never write one.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _return_freed_memory()
    paths = get_paths().ensure()
    fixed = secure_files(paths)
    config = load_config(paths.config_file)
    handler = logging.handlers.RotatingFileHandler(paths.daemon_log, maxBytes=5 * 2**20, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("agentmeter")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    os.chmod(paths.daemon_log, 0o600)
    if not quiet:
        root.addHandler(logging.StreamHandler())
    for f in fixed:
        root.warning("%s was readable by other users; now 0600", f)

    token = secrets.token_urlsafe(32)
    write_private(paths.control_token_file, token)
    listener = inherited_listener() or bind_listener(config.port() if port is None else port)
    chosen = listener.getsockname()[1]

    async def main() -> None:
        from .. import pricing

        pricing.warm()  # genai-prices loads its data once here, not on the first request
        # config_path: budget changes are picked up without a restart
        state = ProxyState(
            config,
            paths.ledger,
            SystemClock(),
            control_token=token,
            key_source=real_keys,
            key_stamp=keys_stamp,
            tz=resolve_tz(config.budget.timezone),
            config_path=paths.config_file,
        )
        state.port = chosen
        app = create_app(state)
        # handler_cancellation: a request the agent abandons (Ctrl-C) is recorded `partial` the moment its
        # connection closes (relay's CancelledError path), not whenever the provider next sends a byte.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True)
        await runner.setup()
        site = web.SockSite(runner, listener, backlog=BACKLOG)
        await site.start()
        offer_listener(paths, listener)
        write_private(paths.port_file, str(chosen))
        write_private(paths.pid_file, str(os.getpid()))
        root.info("agentmeter proxy listening on 127.0.0.1:%d (pid %d)", chosen, os.getpid())
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_event.set)
        watch = asyncio.create_task(_watch_ledger(paths.ledger, stop_event, root))  # noqa: TID251 (a reference kept, cancelled below)
        await stop_event.wait()
        watch.cancel()
        root.info("stopping")
        await runner.cleanup()

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as loop_runner:
            loop_runner.run(main())
    except DatabaseError as exc:
        # One line, which `proxy start` shows: the daemon cannot meter into a damaged ledger.
        root.error("cannot open the ledger %s: %s", paths.ledger, exc)
        sys.stderr.write(
            f"agentmeter: the ledger {paths.ledger} cannot be opened ({exc}). Run: agentmeter doctor --repair\n"
        )
        raise SystemExit(3) from None
    finally:
        if _read_int(paths.pid_file) == os.getpid():
            paths.pid_file.unlink(missing_ok=True)
            paths.port_file.unlink(missing_ok=True)
            paths.listener_socket.unlink(missing_ok=True)


def ledger_identity(path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


async def _watch_ledger(path, stop_event, log) -> None:
    """Stop when the ledger at `path` is deleted or replaced under the daemon (its home removed, a test's temp
    directory cleaned up): the open handle would go on metering into an unlinked file nobody reads, and the
    next `agentmeter run` would trust a daemon whose rows are lost. One stat every HOME_CHECK_S seconds."""
    import asyncio

    first = ledger_identity(path)
    while first is not None:
        await asyncio.sleep(HOME_CHECK_S)
        if ledger_identity(path) != first:
            log.error("the ledger %s was deleted or replaced while the proxy ran; stopping", path)
            stop_event.set()
            return


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _return_freed_memory() -> None:
    """Request bodies (50-200 KB from Claude Code, up to 64 MiB) and response buffers come and go. glibc raises
    its mmap threshold to the size of each freed mapping, after which such blocks come from the heap, which
    it seldom gives back: measured at 64 streams, RSS at rest after load 79 MB, 69 MB with the thresholds
    fixed (blocks over 64 KB mapped and unmapped, the heap trimmed past 128 KB free). glibc only."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, libc's among them (no ldconfig subprocess)
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        pass


def keys_stamp() -> object:
    from ..home import secrets as keystore

    return keystore.stamp()


def real_keys() -> dict[str, str | None]:
    from ..home import secrets as keystore

    # Read apart from the daemon where a keyring is asked (keyring's Linux backends stay out of its memory).
    found = keystore.get_secrets_apart(("anthropic", "openai", "gemini"))
    # A key pasted with its trailing newline (echo key > file, an env var set from a file) still works.
    return {provider: s.value.strip() if s else None for provider, s in found.items()}
