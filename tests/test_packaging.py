"""Packaging (issue 16): the distribution name, licence, classifiers and the refusal on Windows."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_distribution_is_agentmeter_proxy_with_the_agentmeter_command_and_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # `agentmeter` on PyPI is another project: ours must never be installed (or uploaded) under that name.
    assert project["name"] == "agentmeter-proxy"
    assert project["scripts"] == {"agentmeter": "agentmeter.__main__:main"}
    assert (ROOT / "src" / "agentmeter" / "__init__.py").exists()
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    classifiers = set(project["classifiers"])
    for v in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {v}" in classifiers
    assert {"Operating System :: POSIX :: Linux", "Operating System :: MacOS"} <= classifiers
    assert project["urls"]
    # What `pip install` recorded for the package being tested, when it was installed from this tree.
    dists = metadata.packages_distributions().get("agentmeter", [])
    if "agentmeter-proxy" in dists:
        meta = metadata.metadata("agentmeter-proxy")
        assert "Programming Language :: Python :: 3.13" in meta.get_all("Classifier")


def test_windows_is_refused_with_a_pointer_to_wsl():
    # sys.platform is what the check reads; everything else is the real entry point in a real process.
    code = (
        "import sys; sys.platform = 'win32'\n"
        "from agentmeter.__main__ import main\n"
        "raise SystemExit(main(['run', '--', 'true']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "WSL" in r.stderr and "Windows" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2, r.stderr
