"""Issue 14 item 8: every file agentmeter rewrites keeps its mode and owner; new files are private.

Each writer is driven through the real CLI in a subprocess, on real files. The owner half needs a second
uid to own the file, so it runs when we are root (as CI is) and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli

OTHER_USER = "amother"


def other_owner() -> tuple[int, int] | None:
    """(uid, gid) of a second user, created if we are root and it is missing; None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", OTHER_USER], capture_output=True)
        try:
            pw = pwd.getpwnam(OTHER_USER)
        except KeyError:
            return None
    return pw.pw_uid, pw.pw_gid


def prepare(path: Path, text: str, mode: int, owner: tuple[int, int] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    if owner:
        os.chown(path, *owner)


def mode_owner(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


@pytest.fixture(params=["own", "other-uid"])
def owner(request) -> tuple[int, int] | None:
    if request.param == "own":
        return None
    got = other_owner()
    if got is None:
        pytest.skip("needs root (and useradd) to give the file to a second uid; CI runs as root")
    return got


def expect(path: Path, mode: int, owner: tuple[int, int] | None) -> None:
    uid, gid = owner or (os.geteuid(), os.getegid())
    assert mode_owner(path) == (mode, uid, gid), f"{path}: {oct(mode_owner(path)[0])} {mode_owner(path)[1:]}"


def test_statusline_install_keeps_settings_mode_and_owner(tmp_path, owner):
    settings = tmp_path / "userhome" / ".claude" / "settings.json"
    prepare(settings, json.dumps({"env": {"ANTHROPIC_API_KEY": "sk-ant-test-in-settings"}}), 0o600, owner)
    r = run_cli("statusline", "--install", env={"HOME": str(tmp_path / "userhome"), "CLAUDE_CONFIG_DIR": ""})
    assert r.returncode == 0, r.stderr
    assert "statusLine" in json.loads(settings.read_text())
    expect(settings, 0o600, owner)
    expect(settings.with_name("settings.json.agentmeter-backup"), 0o600, owner)  # the backup holds the key too


def test_statusline_install_follows_a_symlinked_settings_file(tmp_path):
    real = tmp_path / "dotfiles" / "claude-settings.json"
    prepare(real, "{}", 0o640)
    link = tmp_path / "userhome" / ".claude" / "settings.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    r = run_cli("statusline", "--install", env={"HOME": str(tmp_path / "userhome"), "CLAUDE_CONFIG_DIR": ""})
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and "statusLine" in json.loads(real.read_text())
    expect(real, 0o640, None)


def test_shell_hook_install_keeps_rc_mode_and_owner(tmp_path, owner):
    rc = tmp_path / "userhome" / ".bashrc"
    prepare(rc, "export EDITOR=vi\n", 0o600, owner)
    r = run_cli("shell-init", "bash", "--install", env={"HOME": str(tmp_path / "userhome"), "SHELL": "/bin/bash"})
    assert r.returncode == 0, r.stderr
    assert rc.read_text().startswith("export EDITOR=vi\n") and "agentmeter" in rc.read_text()
    expect(rc, 0o600, owner)
    expect(rc.with_name(".bashrc.agentmeter-backup"), 0o600, owner)


def test_completions_install_keeps_mode_and_new_ones_are_private(tmp_path, owner):
    env = {"HOME": str(tmp_path / "userhome"), "XDG_DATA_HOME": str(tmp_path / "data")}
    target = tmp_path / "data" / "bash-completion" / "completions" / "agentmeter"
    r = run_cli("completions", "install", "bash", env=env)
    assert r.returncode == 0, r.stderr
    expect(target, 0o600, None)
    prepare(target, "# old\n", 0o644, owner)
    r = run_cli("completions", "install", "bash", env=env)
    assert r.returncode == 0, r.stderr
    assert "complete" in target.read_text()
    expect(target, 0o644, owner)


def test_budget_set_keeps_config_owner_and_never_loosens(home, owner):
    config = home / "config.toml"
    prepare(config, "[budget]\n", 0o600, owner)
    r = run_cli("budget", "set", "--daily", "5")
    assert r.returncode == 0, r.stderr
    assert "daily" in config.read_text()
    expect(config, 0o600, owner)
    os.chmod(config, 0o644)  # agentmeter's own config: rewritten private, never left readable
    assert run_cli("budget", "set", "--daily", "6").returncode == 0
    expect(config, 0o600, owner)


def test_keys_file_keeps_its_owner_and_stays_private(home, owner):
    creds = home / "credentials.toml"
    prepare(creds, "", 0o600, owner)
    r = run_cli("keys", "set", "openai", input="sk-test-file-mode-0000\n")
    assert r.returncode == 0, r.stderr
    assert "sk-test-file-mode-0000" in creds.read_text()
    expect(creds, 0o600, owner)


def test_export_output_keeps_mode_and_new_files_are_private(tmp_path, owner):
    new = tmp_path / "new.csv"
    r = run_cli("export", "--format", "csv", "--output", str(new))
    assert r.returncode == 0, r.stderr
    expect(new, 0o600, None)
    old = tmp_path / "shared.csv"
    prepare(old, "stale\n", 0o640, owner)
    r = run_cli("export", "--format", "csv", "--output", str(old))
    assert r.returncode == 0, r.stderr
    assert "stale" not in old.read_text()
    expect(old, 0o640, owner)


def test_report_html_is_private(tmp_path):
    page = tmp_path / "report.html"
    r = run_cli("report", "--html", str(page))
    assert r.returncode == 0, r.stderr
    assert "<html" in page.read_text().lower()
    expect(page, 0o600, None)


def test_focus_csv_output_is_private_and_keeps_mode(tmp_path, owner):
    from agentmeter.render.sync import focus_csv

    new = tmp_path / "new-focus.csv"
    focus_csv([], str(new))
    expect(new, 0o600, None)
    out = tmp_path / "focus.csv"
    prepare(out, "stale\n", 0o640, owner)
    focus_csv([], str(out))
    expect(out, 0o640, owner)
    assert "stale" not in out.read_text()


def test_atomic_write_leaves_nothing_behind_on_error(tmp_path):
    target = tmp_path / "f.txt"
    prepare(target, "before", 0o600)

    class Boom(Exception):
        pass

    from agentmeter.home.paths import atomic_open, atomic_write

    with pytest.raises(Boom), atomic_open(target, "w") as f:
        f.write("half")
        raise Boom
    assert target.read_text() == "before" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
    atomic_write(target, "after")
    assert target.read_text() == "after"
    expect(target, 0o600, None)


def test_a_shared_sticky_directory_is_never_tightened(tmp_path):
    """Run as root, tightening the parent of a ledger or private file that lived in /tmp made /tmp 0700 for
    every user of the machine. A sticky shared directory is left as it is; the file itself is private."""
    import stat as st_mod

    from agentmeter.home.paths import write_private
    from agentmeter.ledger.store import open_ledger

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    open_ledger(shared / "ledger.db").close()
    write_private(shared / "token", "x")
    assert st_mod.S_IMODE(os.stat(shared).st_mode) == 0o1777
    assert st_mod.S_IMODE(os.stat(shared / "ledger.db").st_mode) == 0o600
    assert st_mod.S_IMODE(os.stat(shared / "token").st_mode) == 0o600


def test_a_ledger_in_a_directory_the_user_chose_leaves_that_directory_alone(tmp_path):
    from agentmeter.ledger.store import open_ledger

    chosen = tmp_path / "reports"
    chosen.mkdir()
    os.chmod(chosen, 0o755)
    open_ledger(chosen / "team.db").close()
    assert (os.stat(chosen).st_mode & 0o777) == 0o755
