"""Provider keys and the collector token: environment, then a real OS keyring, then a 0600 file.

The keyring is only used when it is a real one: on headless Linux keyring picks its `fail` backend
(raises), `null` (drops writes) or keyrings.alt's plaintext file (base64, not encryption). None of
those is better than our own 0600 file, so they are skipped.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import PermissionsError, UsageError
from .paths import get_paths, write_private

SERVICE = "agentmeter"
NAMES = {
    "anthropic": "AGENTMETER_ANTHROPIC_API_KEY",
    "openai": "AGENTMETER_OPENAI_API_KEY",
    "gemini": "AGENTMETER_GEMINI_API_KEY",
    "collector": "AGENTMETER_COLLECTOR_TOKEN",
}
_WEAK_BACKENDS = ("fail", "null", "plaintext", "chainer")


@dataclass(frozen=True)
class Secret:
    name: str
    value: str
    where: str  # "env", "keyring", "file"

    def masked(self) -> str:
        return mask(self.value)


def mask(value: str) -> str:
    if len(value) <= 12:
        return "…" + value[-2:] if len(value) > 4 else "****"
    return f"{value[:7]}…{value[-4:]}"


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise UsageError(f"unknown provider {name!r}", f"use one of: {', '.join(sorted(NAMES))}")


def _no_keyring_here() -> bool:
    """True when no real keyring can answer, decided without importing keyring (whose Linux backends import
    secretstorage and cryptography: ~10 MB resident in the daemon, for nothing on a headless machine): Linux
    with no D-Bus session bus (SecretService, libsecret and KWallet all need one), no backend chosen by
    PYTHON_KEYRING_BACKEND or keyringrc.cfg, and no third-party backend installed."""
    if not sys.platform.startswith("linux"):
        return False
    if os.environ.get("PYTHON_KEYRING_BACKEND") or os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "python_keyring"
    if (config / "keyringrc.cfg").exists():
        return False
    from importlib.metadata import entry_points

    return all(ep.value.startswith("keyring.") for ep in entry_points(group="keyring.backends"))


def _keyring():
    """The OS keyring if it is a real one, else None. Never raises."""
    try:
        if _no_keyring_here():
            return None
        import keyring
        from keyring.errors import KeyringError  # noqa: F401

        backend = keyring.get_keyring()
        kind = type(backend).__module__.lower() + "." + type(backend).__name__.lower()
        if any(w in kind for w in _WEAK_BACKENDS) or getattr(backend, "priority", 0) < 1:
            return None
        return keyring
    except Exception:
        return None


def keyring_backend_name() -> str:
    kr = _keyring()
    if kr is None:
        return "none (using the 0600 file)"
    return type(kr.get_keyring()).__name__


def credentials_path() -> Path:
    return get_paths().credentials


def _readcredentials_path() -> dict[str, str]:
    path = credentials_path()
    if not path.exists():
        return {}
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionsError(
            f"{path} is readable by others (mode {mode:o}); refusing to read keys from it",
            f"run: chmod 600 {path}",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    return {k: v for k, v in data.get("keys", {}).items() if isinstance(v, str)}


def _write_file(values: dict[str, str]) -> None:
    import tomli_w

    write_private(credentials_path(), tomli_w.dumps({"keys": values}))


def get_secret(name: str) -> Secret | None:
    _check_name(name)
    env = os.environ.get(NAMES[name])
    if env:
        return Secret(name, env, "env")
    kr = _keyring()
    if kr is not None:
        try:
            value = kr.get_password(SERVICE, name)
            if value:
                return Secret(name, value, "keyring")
        except Exception:
            pass
    value = _readcredentials_path().get(name)
    return Secret(name, value, "file") if value else None


def get_secrets_apart(names: tuple[str, ...]) -> dict[str, Secret | None]:
    """`get_secret` for each name, for a long-lived process (the daemon): on Linux, when a keyring may have to
    be asked, the asking happens in a short-lived child process, so keyring's backends (secretstorage and
    cryptography: ~10 MB) are never resident in this one. The values come back over the child's stdout pipe,
    never argv or the environment. Where the child cannot run, they are read here as before."""
    found: dict[str, Secret | None] = {}
    for name in names:
        _check_name(name)
        env = os.environ.get(NAMES[name])
        found[name] = Secret(name, env, "env") if env else None
    missing = tuple(n for n, s in found.items() if s is None)
    if not missing:
        return found
    if not sys.platform.startswith("linux") or _no_keyring_here():
        return {**found, **{n: _get_quietly(n) for n in missing}}
    import json
    import subprocess

    try:
        out = subprocess.run(
            [sys.executable, "-m", "agentmeter.home.secrets"],
            input=json.dumps(missing),
            capture_output=True,
            text=True,
            timeout=60,  # a locked keyring may be asking its person to unlock it
            check=True,
        ).stdout
        got = json.loads(out)
        for name in missing:
            entry = got.get(name)
            found[name] = Secret(name, entry[0], entry[1]) if entry else None
        return found
    except (OSError, ValueError, TypeError, IndexError, subprocess.SubprocessError):
        return {**found, **{n: _get_quietly(n) for n in missing}}


def stamp() -> tuple[int, ...]:
    """Changes whenever `set_secret`/`delete_secret` ran (any process) or the 0600 file was edited: the daemon
    re-reads its keys before a new session only then, and otherwise behind it."""
    out: list[int] = []
    for path in (_stamp_path(), credentials_path()):
        try:
            st = path.stat()
            out += [st.st_mtime_ns, st.st_size, st.st_ino]
        except OSError:
            out += [0, 0, 0]
    return tuple(out)


def _stamp_path() -> Path:
    return credentials_path().with_name("keys.changed")


def _touch_stamp() -> None:
    try:
        write_private(_stamp_path(), f"{time.time_ns()}\n")
    except OSError:  # a read-only home: the daemon still re-reads behind the next session
        pass


def _get_quietly(name: str) -> Secret | None:
    try:
        return get_secret(name)
    except Exception:  # a credentials file with loose modes, a broken keyring: no key, never a crash
        return None


def _child() -> None:
    """`python -m agentmeter.home.secrets`: the names as a JSON list on stdin, {name: [value, where] | null} on
    stdout (the parent's pipe)."""
    import json

    names = [n for n in json.loads(sys.stdin.read()) if n in NAMES]
    got = {n: (lambda s: [s.value, s.where] if s else None)(_get_quietly(n)) for n in names}
    sys.stdout.write(json.dumps(got))


def set_secret(name: str, value: str) -> str:
    """Store a secret; returns where it went."""
    _check_name(name)
    value = value.strip()
    if not value:
        raise UsageError("empty key", "paste the key, or pipe it on stdin")
    kr = _keyring()
    if kr is not None:
        try:
            kr.set_password(SERVICE, name, value)
            _touch_stamp()
            return "keyring"
        except Exception:
            pass
    values = _readcredentials_path()
    values[name] = value
    _write_file(values)
    _touch_stamp()
    return "file"


def delete_secret(name: str) -> list[str]:
    _check_name(name)
    removed = []
    kr = _keyring()
    if kr is not None:
        try:
            kr.delete_password(SERVICE, name)
            removed.append("keyring")
        except Exception:
            pass
    values = _readcredentials_path()
    if values.pop(name, None):
        _write_file(values)
        removed.append("file")
    _touch_stamp()
    return removed


_SECRET_SHAPES = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{6,}|sk-[A-Za-z0-9_\-]{16,}|amk_[A-Za-z0-9_\-]{6,}|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-.]+)"
)


def redact(text: str) -> str:
    """Mask anything shaped like a provider key, a virtual key or a JWT before it reaches a log."""
    return _SECRET_SHAPES.sub(lambda m: mask(m.group(0)), text)


if __name__ == "__main__":
    _child()
