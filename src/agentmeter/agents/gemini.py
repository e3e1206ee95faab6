"""Gemini CLI: `GOOGLE_GEMINI_BASE_URL` (read by @google/genai, the root without /v1beta) to the session and,
in key mode, `GEMINI_API_KEY` holding the virtual key.

Gemini CLI also needs the auth method pinned to API key (`security.auth.selectedType`), else it stops
with "Invalid auth method selected." (checked with 0.61.0). It takes that only from a settings file, and
the developer's `~/.gemini/settings.json` is theirs: so the CLI is started with `GEMINI_CLI_HOME` on an
overlay that agentmeter owns, whose `.gemini/` links every entry of the real one (chats, history,
commands, extensions, trusted folders: the session logs land where `import gemini` reads them) except
`settings.json`, a private copy of the developer's settings with the auth method set. (A system settings
file via GEMINI_CLI_SYSTEM_SETTINGS_PATH was tried first: Gemini CLI skips it when any parent directory
is group- or world-writable, as /tmp is.)

A developer who signs in with Google (no API key anywhere) talks to Code Assist, which a local proxy
cannot meter: then the CLI starts untouched and `run` says so once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import AgentSpec, Launch
from .common import base_env

NOTE_OAUTH = (
    "agentmeter: Gemini CLI signed in with Google talks to Google's Code Assist service, which a local "
    "proxy cannot meter. Use an API key (agentmeter keys set gemini) to meter it live, or "
    "agentmeter import gemini afterwards."
)
# Entries the CLI writes on first use: created in the real ~/.gemini (as the CLI itself would) so that
# what it writes through the overlay stays the developer's.
SHARED_DIRS = ("tmp", "history")


def user_gemini_dir(environ: dict[str, str]) -> Path:
    root = environ.get("GEMINI_CLI_HOME") or environ.get("HOME") or str(Path.home())
    return Path(root) / ".gemini"


def overlay_home(environ: dict[str, str], state_dir: Path) -> Path:
    """The GEMINI_CLI_HOME for a metered launch (rebuilt each launch, so new entries are linked)."""
    real = user_gemini_dir(environ)
    home = state_dir / "agents" / "gemini-home"
    over = home / ".gemini"
    over.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    real.mkdir(parents=True, exist_ok=True)
    for name in SHARED_DIRS:
        (real / name).mkdir(exist_ok=True)
    wanted = {p.name for p in real.iterdir() if p.name != "settings.json"}
    for entry in over.iterdir():
        if entry.is_symlink() and entry.name not in wanted:
            entry.unlink()  # the developer removed it
    for name in wanted:
        link = over / name
        if link.is_symlink() and os.readlink(link) == str(real / name):
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            continue  # a directory the CLI created in the overlay before it existed for real: left alone
        link.symlink_to(real / name)
    settings = _user_settings(real / "settings.json")
    security = settings.setdefault("security", {}) if isinstance(settings.get("security", {}), dict) else {}
    auth = security.setdefault("auth", {}) if isinstance(security.get("auth", {}), dict) else {}
    auth["selectedType"] = "gemini-api-key"
    auth.pop("useExternal", None)
    settings["security"] = {**security, "auth": auth}
    _write_private(over / "settings.json", json.dumps(settings, indent=2))
    return home


def _user_settings(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def prepare(session, args: list[str], environ: dict[str, str], binary: str) -> Launch:
    from ..home.paths import get_paths
    from .session_env import session_environment

    env = base_env(environ, session)
    keyed = "gemini" in session.key_mode and session.virtual_key
    own_key = environ.get("GEMINI_API_KEY") or environ.get("GOOGLE_API_KEY")
    if not keyed and not own_key:
        return Launch([binary, *args], env, note=NOTE_OAUTH)
    env.update(session_environment(session, "gemini"))
    if not keyed:
        env["GEMINI_API_KEY"] = own_key  # passthrough: the developer's own key goes through the meter
    env.pop("GOOGLE_API_KEY", None)  # it would win over GEMINI_API_KEY in @google/genai
    env["GEMINI_CLI_HOME"] = str(overlay_home(environ, get_paths().state_dir))
    return Launch([binary, *args], env)


SPEC = AgentSpec(
    "gemini",
    "gemini",
    "npm install -g @google/gemini-cli",
    prepare,
    ("gemini",),
    label="Gemini CLI",
    package="npm:@google/gemini-cli",
    wire=("gemini",),
    metering="live",
    how="GOOGLE_GEMINI_BASE_URL + GEMINI_API_KEY; auth pinned to API key in a private GEMINI_CLI_HOME overlay",
    refusal="429 RESOURCE_EXHAUSTED: the CLI prints agentmeter's message once and exits",
    import_source="~/.gemini/tmp/*/chats/session-*.jsonl (agentmeter import gemini)",
    verified="e2e",
)
