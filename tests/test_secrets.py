"""Keys: environment first, then a real keyring, then a 0600 file refused when wider."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agentmeter.core.errors import PermissionsError, UsageError
from agentmeter.home import secrets


def test_env_wins(monkeypatch):
    monkeypatch.setenv("AGENTMETER_ANTHROPIC_API_KEY", "sk-ant-test-env-000")
    secrets.set_secret("anthropic", "sk-ant-test-file-000")
    s = secrets.get_secret("anthropic")
    assert (s.value, s.where) == ("sk-ant-test-env-000", "env")


def test_fail_keyring_falls_back_to_private_file(home):
    # The autouse fixture selects keyring's `fail` backend, as on a headless Linux box.
    assert secrets.keyring_backend_name().startswith("none")
    assert secrets.set_secret("openai", "sk-test-file-0000000000000") == "file"
    path = secrets.credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets.get_secret("openai").value == "sk-test-file-0000000000000"
    assert secrets.delete_secret("openai") == ["file"]
    assert secrets.get_secret("openai") is None


def test_wider_file_permissions_are_refused(home):
    secrets.set_secret("openai", "sk-test-file-0000000000000")
    os.chmod(secrets.credentials_path(), 0o644)
    with pytest.raises(PermissionsError) as exc:
        secrets.get_secret("openai")
    assert "chmod 600" in exc.value.hint


def test_unknown_name_and_empty_value():
    with pytest.raises(UsageError):
        secrets.get_secret("gemini-pro-max")
    with pytest.raises(UsageError):
        secrets.set_secret("openai", "  \n")


def test_redact_masks_key_shapes():
    text = "key sk-ant-api03-ABCDEFGHIJKLMNOP and amk_ABCDEFGHIJKLMNOPQRSTUV and sk-proj-1234567890abcdefghij"
    red = secrets.redact(text)
    assert "ABCDEFGHIJKLMNOP" not in red and "1234567890abcdefghij" not in red and "QRSTUV" not in red


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the no-D-Bus shortcut is Linux's")
def test_headless_linux_reads_the_file_without_importing_keyring(home, tmp_path):
    """No D-Bus session bus and no backend configured: no real keyring can answer, so keyring (and the
    secretstorage/cryptography its Linux backends pull in, ~10 MB in the daemon) is never imported. With a
    session bus named, keyring is asked first as before (here it cannot connect, and the file still answers)."""
    home.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys; from agentmeter.home import secrets; s = secrets.get_secret('anthropic'); "
        "print(s.where, s.value, 'keyring' in sys.modules, 'cryptography' in sys.modules)"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS")}
    base.update({"AGENTMETER_HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "config")})
    base.pop("ANTHROPIC_API_KEY", None)
    base.pop("AGENTMETER_ANTHROPIC_API_KEY", None)
    secrets._write_file({"anthropic": "sk-ant-test-file-0001"})
    out = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["file", "sk-ant-test-file-0001", "False", "False"]
    bus = {**base, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"}
    out = subprocess.run([sys.executable, "-c", code], env=bus, capture_output=True, text=True, check=True).stdout
    assert out.split()[:3] == ["file", "sk-ant-test-file-0001", "True"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the keyring is read apart on Linux only")
def test_the_daemon_reads_keyring_keys_without_keyring_in_its_memory(home, tmp_path):
    """Where a keyring answers, the daemon's key source asks it from a short-lived child process: the keys
    arrive (keyring first, then the 0600 file, then the environment as always), and keyring — whose Linux
    backends bring secretstorage and cryptography, ~10 MB — is never imported by the daemon's process. The
    keys travel over the child's stdout, never its argv or environment."""
    home.mkdir(parents=True, exist_ok=True)
    store = tmp_path / "keyring.json"
    store.write_text(json.dumps({"agentmeter/anthropic": "sk-ant-test-keyring-0001"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTMETER_", "ANTHROPIC_", "OPENAI_"))}
    env.update(
        {
            "AGENTMETER_HOME": str(home),
            "PYTHON_KEYRING_BACKEND": "file_keyring.Keyring",
            "PYTHONPATH": str(Path(__file__).parent / "fixtures" / "keyring_backend"),
            "AGENTMETER_TEST_KEYRING_FILE": str(store),
            "AGENTMETER_GEMINI_API_KEY": "gm-test-env-0003",
        }
    )
    secrets._write_file({"openai": "sk-test-file-openai-0002"})
    code = (
        "import json, sys; from agentmeter.proxy.daemon import real_keys; "
        "print(json.dumps([real_keys(), 'keyring' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    keys, keyring_loaded = json.loads(out)
    assert keys == {
        "anthropic": "sk-ant-test-keyring-0001",
        "openai": "sk-test-file-openai-0002",
        "gemini": "gm-test-env-0003",
    }
    assert keyring_loaded is False
    # The same backend in-process (as `keys show` reads it) gives the same answer: the child is not a second
    # source of truth.
    code = "from agentmeter.home import secrets; print(secrets.get_secret('anthropic').where)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "keyring"
