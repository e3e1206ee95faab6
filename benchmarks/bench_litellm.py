"""LiteLLM's proxy as a contender: a pinned release in its own virtual environment, configured as a user would.

The first run creates `benchmarks/.venv-litellm` and installs `litellm[proxy]==VERSION` into it (with the
versions in `litellm-constraints.txt`, so the install is reproducible); later runs reuse it.

Configuration (written to the run's temporary directory):

- one `model_list` entry, `claude-sonnet-4-5` → `anthropic/claude-sonnet-4-5` with `api_base` = the fake
  provider, a `master_key` that clients present as `Authorization: Bearer …` (ANTHROPIC_AUTH_TOKEN);
- clients call `/v1/messages?beta=true` (LiteLLM's Anthropic-format endpoint; what Claude Code calls);
- spend tracking as shipped: LiteLLM computes every response's cost from its model cost map and runs its
  spend-tracking callback (`_ProxyDBLogger._PROXY_track_cost_callback`, key/user spend in its cache). It has
  no database: LiteLLM's spend logs need PostgreSQL through Prisma, whose engines `prisma generate`
  downloads at first start, which cannot happen offline. So LiteLLM writes no spend rows; agentmeter
  commits one ledger row per request. That makes LiteLLM's numbers here a lower bound on its cost.
- defaults otherwise: one uvicorn worker (LiteLLM's default), its default logging.

It never reaches the internet: LITELLM_LOCAL_MODEL_COST_MAP=True (the bundled cost map, no download),
`--telemetry False`, HTTP(S)_PROXY pointed at a closed loopback port with NO_PROXY=127.0.0.1,localhost (any
stray HTTP client call fails at once), and `foreign_peers()` checks its sockets during the run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

VERSION = "1.79.3"
HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-litellm"
CONSTRAINTS = HERE / "litellm-constraints.txt"
MASTER_KEY = "sk-bench-master-0000"
MODEL = "claude-sonnet-4-5"


def _bin(name: str) -> Path:
    return VENV / "bin" / name


def installed_version() -> str | None:
    py = _bin("python")
    if not py.exists():
        return None
    r = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_installed(log=print) -> tuple[bool, str]:
    """(ok, message). Installs on first use; a failure is reported, never raised."""
    have = installed_version()
    if have == VERSION and _bin("litellm").exists():
        return True, f"LiteLLM {VERSION} (in {VENV.relative_to(HERE.parent)})"
    log(f"installing litellm[proxy]=={VERSION} into {VENV} (first run only, about a minute)…")
    try:
        if not _bin("python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        cmd = [
            str(_bin("python")),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"litellm[proxy]=={VERSION}",
        ]
        if CONSTRAINTS.exists():
            cmd[5:5] = ["-c", str(CONSTRAINTS)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-5:])
            return False, f"pip install litellm[proxy]=={VERSION} failed: {tail}"
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"could not create {VENV}: {exc}"
    have = installed_version()
    if have != VERSION:
        return False, f"installed LiteLLM reports version {have!r}, expected {VERSION}"
    return True, f"LiteLLM {VERSION} (installed into {VENV.relative_to(HERE.parent)})"


def write_config(workdir: Path, upstream: str) -> Path:
    cfg = workdir / "litellm.yaml"
    cfg.write_text(f"""\
model_list:
  - model_name: {MODEL}
    litellm_params:
      model: anthropic/{MODEL}
      api_base: {upstream}
      api_key: sk-ant-bench-not-a-key
litellm_settings:
  telemetry: false
general_settings:
  master_key: {MASTER_KEY}
""")
    return cfg


def env(base: dict) -> dict:
    e = dict(base)
    e.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "DO_NOT_TRACK": "1",
            "DISABLE_SCHEMA_UPDATE": "true",
        }
    )
    for k in ("DATABASE_URL", "DIRECT_URL", "REDIS_HOST", "REDIS_URL", "LITELLM_LOG"):
        e.pop(k, None)
    return e


def start(procs, workdir: Path, upstream: str, port: int, base_env: dict, timeout: float = 90):
    """Start the proxy; returns the Popen once /health/liveliness answers."""
    cfg = write_config(workdir, upstream)
    cmd = [
        str(_bin("litellm")),
        "--config",
        str(cfg),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--telemetry",
        "False",
    ]
    p = procs.start("litellm", cmd, env(base_env))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"litellm exited (code {p.returncode}):\n{procs.log('litellm')}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/liveliness", timeout=2) as r,
        ):
            if r.status == 200:
                return p
        time.sleep(0.25)
    raise RuntimeError(f"litellm did not become healthy within {timeout:.0f} s:\n{procs.log('litellm')}")


def foreign_peers(pid: int) -> set[str]:
    """Remote addresses of `pid`'s TCP sockets that are not loopback (should stay empty)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    out = set()
    for table, v6 in (("tcp", False), ("tcp6", True)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                f = line.split()
                if len(f) < 10 or f[9] not in inodes:
                    continue
                addr = _addr(f[2], v6)
                if addr and not _loopback(addr):
                    out.add(addr)
    return out


def _addr(hexaddr: str, v6: bool) -> str | None:
    host, _, port = hexaddr.partition(":")
    try:
        if not v6:
            ip = ".".join(str(int(host[i : i + 2], 16)) for i in (6, 4, 2, 0))
        else:
            words = [host[i : i + 8] for i in range(0, 32, 8)]
            raw = b"".join(bytes.fromhex(w)[::-1] for w in words)
            import ipaddress

            a = ipaddress.IPv6Address(raw)
            ip = str(a.ipv4_mapped) if a.ipv4_mapped else str(a)
        return f"{ip}:{int(port, 16)}"
    except ValueError:
        return None


def _loopback(addr: str) -> bool:
    ip = addr.rsplit(":", 1)[0]
    return ip.startswith("127.") or ip in ("::1", "0.0.0.0", "::")
