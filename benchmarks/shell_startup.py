"""What the shell hook adds to an interactive shell's start-up: `bash -i -c exit` (and zsh, fish) with an
empty rc file, with the documented eval line, and with the block `shell-init --install` writes.

    python benchmarks/shell_startup.py [--runs 20] [--shells bash,zsh,fish]

Each shell gets a throw-away HOME and AGENTMETER_HOME; runs are interleaved so machine drift hits every
variant alike; medians are reported. The eval line starts Python on every shell start; the installed block
sources a cached hook (no subprocess) and falls back to the eval only when the cache is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RC = {"bash": ".bashrc", "zsh": ".zshrc", "fish": ".config/fish/config.fish"}
EVAL = {
    "bash": 'eval "$(agentmeter shell-init bash)"',
    "zsh": 'eval "$(agentmeter shell-init zsh)"',
    "fish": "agentmeter shell-init fish | source",
}


def agentmeter_bin() -> str:
    found = Path(sys.executable).with_name("agentmeter")
    return str(found) if found.exists() else (shutil.which("agentmeter") or "agentmeter")


def homes(root: Path, shell: str, env: dict[str, str]) -> dict[str, Path]:
    """Three HOMEs: no hook, the eval line, the installed (cached) block."""
    out = {}
    for variant in ("none", "eval", "installed"):
        home = root / shell / variant
        rc = home / RC[shell]
        rc.parent.mkdir(parents=True, exist_ok=True)
        rc.write_text("" if variant != "eval" else EVAL[shell] + "\n")
        if variant == "installed":
            subprocess.run(
                [agentmeter_bin(), "shell-init", shell, "--install"],
                env={**env, "HOME": str(home)},
                check=True,
                capture_output=True,
            )
        out[variant] = home
    return out


def time_start(shell: str, home: Path, env: dict[str, str]) -> float:
    cmd = [shell, "-i", "-c", "exit"]
    t0 = time.perf_counter()
    subprocess.run(
        cmd,
        env={**env, "HOME": str(home)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--shells", default="bash,zsh,fish")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentmeter-shell-bench-") as tmp:
        root = Path(tmp)
        bindir = str(Path(agentmeter_bin()).parent)
        env = {
            "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "/usr/bin:/bin")]),
            "AGENTMETER_HOME": str(root / "agentmeter"),
            "TERM": "dumb",
            "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": "",
            "ZDOTDIR": "",
        }
        env = {k: v for k, v in env.items() if v}
        print(f"{'shell':<6} {'no hook':>9} {'eval line':>10} {'installed':>10}   eval adds   installed adds")
        for shell in args.shells.split(","):
            if not shutil.which(shell):
                print(f"{shell:<6} not installed")
                continue
            variants = homes(root, shell, env)
            for home in variants.values():  # warm the page cache and the .pyc files
                time_start(shell, home, env)
            samples: dict[str, list[float]] = {v: [] for v in variants}
            for _ in range(args.runs):
                for variant, home in variants.items():
                    samples[variant].append(time_start(shell, home, env))
            med = {v: statistics.median(s) for v, s in samples.items()}
            print(
                f"{shell:<6} {med['none']:>7.1f}ms {med['eval']:>8.1f}ms {med['installed']:>8.1f}ms   "
                f"{med['eval'] - med['none']:+6.1f}ms ×{med['eval'] / med['none']:.2f}   "
                f"{med['installed'] - med['none']:+6.1f}ms ×{med['installed'] / med['none']:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
