"""The shell hooks in real bash, zsh and fish, `shell-init --install`, and the completion scripts.

The hooks are exercised with stand-ins on PATH: `claude` prints its arguments and `agentmeter` logs how it
was called, so each test sees exactly what the wrapper ran. tests/e2e/test_shell_hooks.py runs the real
Claude Code through the hook against the fake provider.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentmeter.hooks.completions import FILES
from agentmeter.hooks.shell import MARK_BEGIN, SHELLS
from conftest import REPO, run_cli

WARNING = "agentmeter: not on PATH or broken"


def need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed (apt-get install -y zsh fish; .ci/run installs them)")
    return path


@pytest.fixture(params=SHELLS)
def shell(request) -> str:
    need(request.param)
    return request.param


def stub(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


class Box:
    """A throw-away user: HOME, a bin dir with the stand-ins, the hook from `agentmeter shell-init`."""

    def __init__(self, tmp: Path, shell: str) -> None:
        self.tmp, self.shell = tmp, shell
        self.home = tmp / "userhome"
        self.home.mkdir()
        self.bin = tmp / "bin"  # the agent
        self.am_bin = tmp / "ambin"  # a stand-in agentmeter
        self.log = tmp / "agentmeter.log"
        stub(
            self.bin / "claude",
            "printf 'REAL claude'; printf ' [%s]' \"$@\"; printf ' session=%s\\n' \"${AGENTMETER_SESSION_ID:-}\"\n",
        )
        stub(
            self.am_bin / "agentmeter",
            f"printf '%s|' \"$@\" >> {self.log}; printf '\\n' >> {self.log}\n"
            "printf 'AGENTMETER'; printf ' [%s]' \"$@\"; printf '\\n'\n"
            "exit ${AM_EXIT:-0}\n",
        )
        self.hook = tmp / f"hook.{shell}"
        r = run_cli("shell-init", shell)
        assert r.returncode == 0, r.stderr
        self.hook.write_text(r.stdout)

    def env(self, path: list[Path | str] | None = None, **extra: str) -> dict[str, str]:
        dirs = [self.am_bin, self.bin] if path is None else path
        return {
            "PATH": os.pathsep.join([*map(str, dirs), "/usr/bin", "/bin"]),
            "HOME": str(self.home),
            "AGENTMETER_HOME": os.environ["AGENTMETER_HOME"],
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "ZDOTDIR": str(self.home),
            **extra,
        }

    def source(self) -> str:
        """The documented way to load the hook: eval the output of shell-init (fish: pipe it to source)."""
        return f"cat {self.hook} | source" if self.shell == "fish" else f'eval "$(cat {self.hook})"'

    def run(self, script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.shell, "-c", f"{self.source()}\n{script}"],
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=30,
            cwd=self.tmp,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def box(tmp_path, shell) -> Box:
    return Box(tmp_path, shell)


def status_of(shell: str) -> str:
    return "echo rc=$status" if shell == "fish" else "echo rc=$?"


# --- the hook ----------------------------------------------------------------------------------------------


def test_hook_defines_functions_that_run_agentmeter(box):
    r = box.run(f"type claude codex cursor\nclaude -p 'say hello' \"it's\"\n{status_of(box.shell)}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("function") >= 3, r.stdout
    assert "AGENTMETER [run] [--unmetered-on-error] [claude] [-p] [say hello] [it's]" in r.stdout
    assert "REAL claude" not in r.stdout and "rc=0" in r.stdout
    assert box.calls() == ["run|--unmetered-on-error|claude|-p|say hello|it's|"]


def test_the_agents_exit_code_comes_back(box):
    r = box.run(f"claude x\n{status_of(box.shell)}", env=box.env(AM_EXIT="7"))
    assert "rc=7" in r.stdout


def test_sourcing_twice_changes_nothing(box):
    show = {
        "bash": "declare -f; declare -p | grep '^declare -[-a-z]* __agentmeter'",
        "zsh": "functions; typeset -m '__agentmeter*'",
        "fish": "functions claude codex cursor __agentmeter_wrap __agentmeter_usable __agentmeter_disabled; "
        "set | grep '^__agentmeter'",
    }[box.shell]
    once = box.run(show)
    twice = box.run(f"{box.source()}\n{show}")
    assert once.returncode == 0 and once.stdout == twice.stdout and "claude" in once.stdout
    r = box.run(f"{box.source()}\nclaude hi")
    assert r.stdout.count("AGENTMETER") == 1 and box.calls() == ["run|--unmetered-on-error|claude|hi|"]


def test_disable_and_command_bypass_the_wrapper(box):
    r = box.run("claude one\ncommand claude two", env=box.env(AGENTMETER_DISABLE="1"))
    assert r.stdout.splitlines() == ["REAL claude [one] session=", "REAL claude [two] session="]
    r = box.run("command claude three")
    assert r.stdout.splitlines() == ["REAL claude [three] session="]
    assert box.calls() == []
    box.run("claude four", env=box.env(AGENTMETER_DISABLE="0"))  # 0 means not disabled
    assert box.calls() == ["run|--unmetered-on-error|claude|four|"]


def test_inside_a_wrapped_session_the_real_agent_runs(box):
    # `agentmeter run` exported AGENTMETER_SESSION_ID (and the base URLs): the agent is already metered
    r = box.run("claude nested", env=box.env(AGENTMETER_SESSION_ID="s-outer"))
    assert r.stdout.splitlines() == ["REAL claude [nested] session=s-outer"]
    assert box.calls() == []


def test_missing_agentmeter_runs_the_agent_and_warns_once(box):
    r = box.run("claude one\nclaude two", env=box.env(path=[box.bin]))
    assert r.stdout.splitlines() == ["REAL claude [one] session=", "REAL claude [two] session="]
    assert r.stderr.count(WARNING) == 1, r.stderr


def test_broken_agentmeter_install_runs_the_agent_and_warns_once(box, tmp_path):
    broken = tmp_path / "deadvenv" / "bin"
    stub(broken / "agentmeter", "")
    (broken / "agentmeter").write_text(f"#!{tmp_path}/deadvenv/bin/python\nimport agentmeter\n")  # venv deleted
    r = box.run("claude one\nclaude two", env=box.env(path=[broken, box.bin]))
    assert r.stdout.splitlines() == ["REAL claude [one] session=", "REAL claude [two] session="]
    assert r.stderr.count(WARNING) == 1, r.stderr


def test_hook_wraps_the_configured_agents(box, home):
    (home / "config.toml").parent.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[shell]\nagents = ["claude", "aider"]\n')
    box.hook.write_text(run_cli("shell-init", box.shell).stdout)
    kind = {"bash": "type -t", "zsh": "whence -w", "fish": "type -t"}[box.shell]
    r = box.run(f"{kind} claude aider; {kind} codex")
    assert r.stdout.count("function") == 2 and "codex" not in r.stdout.replace("codex: none", ""), r.stdout


def test_bad_agent_names_and_shells_are_refused(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[shell]\nagents = ["claude; rm -rf ~"]\n')
    r = run_cli("shell-init", "bash")
    assert r.returncode == 3 and "cannot be a shell function name" in r.stderr and r.stdout == ""
    r = run_cli("shell-init", "tcsh")  # typer words a bad choice (cli/args.py gives such argvs to it)
    assert r.returncode == 2 and "'tcsh' is not one of" in r.stderr and r.stdout == ""
    assert all(f"'{shell}'" in r.stderr for shell in ("bash", "zsh", "fish"))
    r = run_cli("shell-init", "--install", env={"SHELL": "/bin/tcsh"})
    assert r.returncode == 2 and "agentmeter shell-init bash|zsh|fish" in r.stderr


# --- shell-init --install -------------------------------------------------------------------------------------

RC = {"bash": ".bashrc", "zsh": ".zshrc", "fish": ".config/fish/config.fish"}


def interactive(box: Box, script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [box.shell, "-i", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        cwd=box.tmp,
    )


def test_install_adds_the_block_once_with_a_backup(box):
    rc = box.home / RC[box.shell]
    rc.parent.mkdir(parents=True, exist_ok=True)
    rc.write_text("# my own settings\nexport EDITOR=vi\n" if box.shell != "fish" else "set -gx EDITOR vi\n")
    original = rc.read_text()
    env = box.env(path=[box.am_bin, box.bin])
    r = run_cli("shell-init", box.shell, "--install", env={**env, "PATH": os.environ["PATH"]})
    assert r.returncode == 0, r.stderr
    text = rc.read_text()
    assert text.startswith(original) and text.count(MARK_BEGIN) == 1
    assert rc.with_name(rc.name + ".agentmeter-backup").read_text() == original
    r = run_cli("shell-init", box.shell, "--install", env={**env, "PATH": os.environ["PATH"]})
    assert r.returncode == 0 and "already" in r.stderr
    assert rc.read_text() == text and not rc.with_name(rc.name + ".agentmeter-backup.1").exists()
    # A new interactive shell has the functions, and starting it ran no agentmeter: the hook is cached.
    kind = {"bash": "type -t", "zsh": "whence -w", "fish": "type -t"}[box.shell]
    r = interactive(box, f"{kind} claude", env)
    assert "function" in r.stdout, r.stdout + r.stderr
    assert box.calls() == []
    r = interactive(box, "claude hi", env)
    assert box.calls() == ["run|--unmetered-on-error|claude|hi|"]


def test_installed_hook_follows_config_changes(box, home):
    env = box.env(path=[Path(sys.executable).parent, box.bin])  # the real agentmeter, to refresh the hook
    r = run_cli("shell-init", box.shell, "--install", env=env)
    assert r.returncode == 0, r.stderr
    cached = home / "state" / "shell" / f"hook.{box.shell}"
    config = home / "config.toml"
    config.write_text('[shell]\nagents = ["claude", "aider"]\n')
    os.utime(config, (cached.stat().st_mtime + 5, cached.stat().st_mtime + 5))  # edited after the install
    kind = {"bash": "type -t", "zsh": "whence -w", "fish": "type -t"}[box.shell]
    r = interactive(box, f"{kind} aider", env)
    assert "function" in r.stdout, r.stdout + r.stderr
    assert "aider" in cached.read_text().split("\n\n", 2)[1]  # the cache was rewritten


def test_install_picks_the_rc_file_from_shell(tmp_path):
    env = {"HOME": str(tmp_path), "SHELL": "/usr/bin/zsh", "ZDOTDIR": str(tmp_path / "zdot"), "XDG_CONFIG_HOME": ""}
    r = run_cli("shell-init", "--install", env=env)
    assert r.returncode == 0, r.stderr
    assert MARK_BEGIN in (tmp_path / "zdot" / ".zshrc").read_text() and not (tmp_path / ".bashrc").exists()


# --- completions ------------------------------------------------------------------------------------------


def test_completions_are_current():
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_completions.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"completions are stale — run: python scripts/gen_completions.py\n{r.stderr}"


def test_bash_completion():
    need("bash")
    script = (
        f". {REPO}/completions/agentmeter.bash\n"
        't() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _agentmeter; '
        'echo "${COMPREPLY[*]}"; }\n'
        "t agentmeter pro; t agentmeter proxy st; t agentmeter run --budget 5 c; t agentmeter run claude -\n"
        "t agentmeter report --by mon; t agentmeter shell-init ''; t agentmeter prompt --no"
    )
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.stdout.splitlines() == [
        "prompt proxy",
        "start stop status",
        "claude codex copilot crush cline cursor",
        "",
        "month",
        "bash zsh fish",
        "--no-color",
    ], r.stderr


def test_zsh_completion():
    need("zsh")
    # the completion system's builtins, replaced by functions that print what they were given
    script = (
        f"source {REPO}/completions/_agentmeter 2>/dev/null\n"
        '_describe() { print -l -- ${(P)${@[-1]}} }; compadd() { shift; print -l -- "$@" }\n'
        "_default() { print _default }; _files() { print _files }\n"
        't() { words=("$@"); CURRENT=$#words; print -- "== $*"; _agentmeter }\n'
        "t agentmeter pro; t agentmeter proxy st; t agentmeter run --budget 5 c; t agentmeter run claude -\n"
        "t agentmeter export --output x"
    )
    r = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, timeout=30)
    blocks = {b.split("\n", 1)[0]: b.split("\n")[1:] for b in r.stdout.split("== ")[1:]}
    assert "proxy:The per-user metering proxy on 127.0.0.1." in blocks["agentmeter pro"], r.stdout + r.stderr
    assert (
        "start:Start the proxy in the background (no-op when it is already running)." in blocks["agentmeter proxy st"]
    )
    assert "claude" in blocks["agentmeter run --budget 5 c"] and "--budget" not in blocks["agentmeter run claude -"]
    assert blocks["agentmeter run claude -"][0] == "_default" and blocks["agentmeter export --output x"][0] == "_files"


def test_fish_completion(tmp_path):
    need("fish")

    def complete(line: str) -> list[str]:
        r = subprocess.run(
            ["fish", "-c", f"source {REPO}/completions/agentmeter.fish; complete -C {line!r}"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        )
        return [ln.split("\t")[0] for ln in r.stdout.splitlines()]

    assert complete("agentmeter pro") == ["prompt", "proxy"]
    assert complete("agentmeter proxy st") == ["start", "status", "stop"]
    assert complete("agentmeter shell-init ") == ["bash", "fish", "zsh"]
    assert complete("agentmeter budget set --d") == ["--daily", "--daily-tokens", "--dry-run"]


def test_completions_install_writes_where_each_shell_looks(tmp_path):
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": "", "XDG_CONFIG_HOME": ""}
    targets = {
        "bash": tmp_path / ".local/share/bash-completion/completions/agentmeter",
        "zsh": tmp_path / ".local/share/zsh/site-functions/_agentmeter",
        "fish": tmp_path / ".config/fish/completions/agentmeter.fish",
    }
    for sh, target in targets.items():
        r = run_cli("completions", "install", sh, env=env)
        assert r.returncode == 0, r.stderr
        assert target.read_text() == (REPO / "completions" / FILES[sh]).read_text()
