"""Shell hooks: the scripts in this folder with the configured agents filled in, and installing them.

`agentmeter shell-init SHELL` prints a hook for `eval`; that costs one Python start per shell start
(benchmarks/shell_startup.py). `--install` therefore writes the hook to a cached file and adds a line to
the rc file that sources it, falling back to the eval when the cache is missing; the cached hook rewrites
itself (one `shell-init --refresh`) when config.toml is newer than it.

Imported by the `shell-init` fast path (cli/fast.py): standard library and agentmeter's light modules only.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError, UsageError

SHELLS = ("bash", "zsh", "fish")
HERE = Path(__file__).resolve().parent
MARK_BEGIN = "# >>> agentmeter >>>"
MARK_END = "# <<< agentmeter <<<"
# An agent name becomes a shell function name: keep it to characters every shell accepts unquoted.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_RESERVED = {
    "agentmeter",
    "command",
    "builtin",
    "function",
    "eval",
    "exec",
    "source",
    "set",
    "test",
    "cd",
    "if",
    "then",
    "fi",
    "for",
    "do",
    "done",
    "end",
    "return",
    "exit",
    "time",
    "while",
    "case",
}


def template(shell: str) -> str:
    if shell not in SHELLS:
        raise UsageError(f"unknown shell {shell!r}", "use one of: bash, zsh, fish")
    return (HERE / f"agentmeter.{shell}").read_text(encoding="utf-8")


def check_agents(agents: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    for name in agents:
        if not _NAME.match(name) or name in _RESERVED:
            raise ConfigError(
                f"[shell] agents: {name!r} cannot be a shell function name",
                "use agent command names such as claude, codex, cursor",
            )
    return tuple(dict.fromkeys(agents))


def hook(
    shell: str, agents: tuple[str, ...] | list[str], *, config_file: Path | None = None, cache_file: Path | None = None
) -> str:
    """The hook script for `shell` wrapping `agents`. With `cache_file`, the script knows it is that cached
    copy and regenerates itself when `config_file` is newer."""
    text = template(shell)
    names = check_agents(agents)
    config = str(config_file) if (config_file and cache_file) else ""
    self_path = str(cache_file) if cache_file else ""
    if shell == "fish":
        lines = {
            "set -g __agentmeter_agents claude codex cursor": "set -g __agentmeter_agents " + " ".join(names),
            "set -g __agentmeter_config ''": f"set -g __agentmeter_config {_fish_quote(config)}",
            "set -g __agentmeter_self ''": f"set -g __agentmeter_self {_fish_quote(self_path)}",
        }
    else:
        lines = {
            "__agentmeter_agents=(claude codex cursor)": f"__agentmeter_agents=({' '.join(names)})",
            "__agentmeter_config=''": f"__agentmeter_config={shlex.quote(config)}",
            "__agentmeter_self=''": f"__agentmeter_self={shlex.quote(self_path)}",
        }
    for old, new in lines.items():
        if old not in text:  # pragma: no cover - guards against an edit to the script that breaks this
            raise RuntimeError(f"shell/agentmeter.{shell} lost its line {old!r}")
        text = text.replace(old, new, 1)
    return text


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def detect_shell(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    name = Path(env.get("SHELL", "")).name
    if name not in SHELLS:
        raise UsageError(
            f"cannot tell your shell from SHELL={env.get('SHELL', '')!r}",
            "name it: agentmeter shell-init bash|zsh|fish",
        )
    return name


def rc_file(shell: str, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    if shell == "bash":
        return home / ".bashrc"
    if shell == "zsh":
        return Path(env.get("ZDOTDIR") or home) / ".zshrc"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "fish" / "config.fish"


def cache_file(shell: str) -> Path:
    from ..home.paths import get_paths

    return get_paths().state_dir / "shell" / f"hook.{shell}"


def write_cache(shell: str, agents, config_file: Path) -> Path:
    from ..home.paths import write_private

    path = cache_file(shell)
    write_private(path, hook(shell, agents, config_file=config_file, cache_file=path))
    return path


def rc_block(shell: str, cached: Path) -> str:
    if shell == "fish":
        line = (
            f"if test -r {_fish_quote(str(cached))}; source {_fish_quote(str(cached))}; "
            "else if command -q agentmeter; agentmeter shell-init fish | source; end"
        )
    else:
        q = shlex.quote(str(cached))
        line = (
            f"if [ -r {q} ]; then . {q}; elif command -v agentmeter >/dev/null 2>&1; then "
            f'eval "$(agentmeter shell-init {shell})"; fi'
        )
    return f"{MARK_BEGIN} added by `agentmeter shell-init --install`; delete this block to remove\n{line}\n{MARK_END}\n"


@dataclass(frozen=True)
class Installed:
    shell: str
    rc_file: Path
    cache_file: Path
    backup: Path | None  # None when the rc file did not exist or already had the block
    already: bool


def install(shell: str, agents, config_file: Path, environ: dict[str, str] | None = None) -> Installed:
    """Write the cached hook and add the block to the rc file once, after backing the file up."""
    cached = write_cache(shell, agents, config_file)
    rc = rc_file(shell, environ)
    text = rc.read_text(encoding="utf-8") if rc.exists() else ""
    if MARK_BEGIN in text:
        return Installed(shell, rc, cached, None, True)
    backup = backup_file(rc) if rc.exists() else None
    rc.parent.mkdir(parents=True, exist_ok=True)
    sep = "" if not text or text.endswith("\n") else "\n"
    from ..home.paths import atomic_write

    atomic_write(rc, f"{text}{sep}\n{rc_block(shell, cached)}")  # keeps the rc file's mode and owner
    return Installed(shell, rc, cached, backup, False)


def backup_file(path: Path) -> Path:
    """`FILE.agentmeter-backup`, or `.1`, `.2`… so an earlier backup is never overwritten."""
    backup, n = path.with_name(path.name + ".agentmeter-backup"), 0
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.agentmeter-backup.{n}")
    from ..home.paths import atomic_write

    # Same mode and owner as the original from the first byte (copy2 would create it 0644 first).
    atomic_write(backup, Path(os.path.realpath(path)).read_bytes(), like=path)
    shutil.copystat(path, backup)  # and its times
    return backup
