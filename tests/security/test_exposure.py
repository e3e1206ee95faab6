"""Exposure: loopback only, a token on every route, private files, and no secret or prompt anywhere on disk,
in a log, in an agent's environment or in what a failing command prints (DESIGN section 3; docs/security.md)."""

from __future__ import annotations

import asyncio
import hmac
import http.client
import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from chaos.harness import start_fake, user_env
from conftest import make_stack

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def cli(env: dict, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, "-m", "agentmeter", *args], env=env, capture_output=True, text=True, input=input, timeout=60
    )
    if check:
        assert r.returncode == 0, f"agentmeter {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture
def fake(tmp_path):
    f = start_fake(tmp_path)
    yield f
    f.stop()


# -- binding ------------------------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the listening TCP sockets on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                found.add(addr)
    return found


def test_daemon_listens_on_loopback_only(home, fake):
    env = user_env(home, fake)
    try:
        st = json.loads(cli(env, "proxy", "start", "--json").stdout)
        assert st["url"].startswith("http://127.0.0.1:")
        assert listening_addresses(st["port"]) == {"0100007F"}  # 127.0.0.1, nothing else, no IPv6
    finally:
        cli(env, "proxy", "stop", check=False)


# -- tokens --------------------------------------------------------------------------------------------------


def status_of(url: str, method: str = "POST", headers: dict | None = None, data: bytes | None = b"{}") -> tuple:
    req = urllib.request.Request(
        url,
        data=data if method not in ("GET", "HEAD") else None,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_every_route_needs_the_session_token(stack):
    s = stack.open_session()
    token, sid = s["token"], s["session_id"]
    from agentmeter.proxy.app import token_hash

    wrong = [
        secrets.token_urlsafe(24),
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        token.upper(),
        token_hash(token),
        sid,
        token + "x",
        "",
        "%00",
        "..",
        "x" * 5000,
    ]
    tails = [
        "anthropic/v1/messages",
        "anthropic/v1/messages/count_tokens",
        "anthropic/v1/models",
        "openai/v1/responses",
        "openai/v1/chat/completions",
        "openai/v1/models",
        "openai/v1/files/abc",
        "anthropic/v1/anything/else",
        "anthropic",
        "openai",
    ]
    for bad in wrong:
        for tail in tails:
            for method in ("POST", "GET", "DELETE", "PUT"):
                code, body = status_of(f"{stack.proxy_url}/s/{bad}/{tail}", method)
                assert code in (401, 404), (bad, tail, method, code)
                if code == 401:  # refused in the provider's own shape
                    err = json.loads(body)["error"]
                    assert err["message"].startswith("agentmeter: ") and "session token" in err["message"]
            code, _ = status_of(f"{stack.proxy_url}/s/{bad}/{tail}", "HEAD")
            assert code in (401, 404)
    for path in ("/v1/messages", "/", "/s/", "/anthropic/v1/messages", "/openai/v1/responses", "/s//anthropic"):
        assert status_of(stack.proxy_url + path)[0] == 401, path

    async def ws(bad: str) -> int:
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(f"{stack.proxy_url}/s/{bad}/openai/v1/responses"):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    for bad in wrong[:4]:
        assert asyncio.run(ws(bad)) == 401
    assert stack.received() == []  # nothing reached the provider

    # The control API takes the control token, and a session token is not one.
    for path in (
        "/_agentmeter/v1/sessions",
        f"/_agentmeter/v1/sessions/{sid}/end",
        "/_agentmeter/v1/snooze",
        "/_agentmeter/v1/reload-totals",
    ):
        for auth in (
            {},
            {"Authorization": f"Bearer {token}"},
            {"Authorization": "Bearer test-contro"},
            {"Authorization": "test-control"},
        ):
            assert status_of(stack.proxy_url + path, headers=auth)[0] == 401, (path, auth)
    # Health says it is up, and nothing more, to anyone else.
    assert json.loads(status_of(stack.proxy_url + "/_agentmeter/v1/health", "GET")[1]) == {"ok": True}
    full = json.loads(
        status_of(stack.proxy_url + "/_agentmeter/v1/health", "GET", {"Authorization": "Bearer test-control"})[1]
    )
    assert full["pid"] == os.getpid() and "ledger_backlog" in full


def test_token_checks_go_through_compare_digest(stack, monkeypatch):
    """Session, virtual-key and control tokens are compared in constant time (on their SHA-256)."""
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("agentmeter.proxy.app.hmac.compare_digest", spy)
    s = stack.open_session()
    assert status_of(s["anthropic"] + "/v1/models", "GET", {"x-api-key": "sk-ant-test"})[0] == 200
    assert any(a == b and len(a) == 64 for a, b in calls)  # the session token's hash, compared constant-time
    calls.clear()
    status_of(stack.proxy_url + "/_agentmeter/v1/snooze", headers={"Authorization": "Bearer nope"})
    assert calls and calls[-1][1] == b"test-control"


# -- files ---------------------------------------------------------------------------------------------------


def test_loose_permissions_are_fixed_at_start_and_a_loose_key_file_is_refused(home, fake):
    from agentmeter.ledger import open_ledger

    for d in (home, home / "state", home / "run", home / "log"):
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
    (home / "config.toml").write_text('[alerts]\nwebhook = "https://hooks.example.com/T000/B000/secret"\n')
    open_ledger(home / "ledger.db").close()
    (home / "log" / "proxy.log").write_text("old line\n")
    for f in ("config.toml", "ledger.db", "log/proxy.log"):
        (home / f).chmod(0o644)
    (home / "credentials.toml").write_text('[keys]\nanthropic = "sk-ant-loose-0000000000"\n')
    (home / "credentials.toml").chmod(0o644)
    env = user_env(home, fake, key_mode=False)
    try:
        cli(env, "proxy", "start")
        for p in [home, *home.rglob("*")]:
            mode = stat.S_IMODE(p.stat().st_mode)
            if p.name == "credentials.toml":
                assert mode == 0o644  # not silently "fixed": the key may already be out
            elif p.is_dir():
                assert mode == 0o700, (p, oct(mode))
            else:
                assert mode & 0o077 == 0, (p, oct(mode))
        r = cli(env, "keys", "list", check=False)
        assert r.returncode != 0 and "readable by others" in r.stderr and "chmod 600" in r.stderr
    finally:
        cli(env, "proxy", "stop", check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a directory to another user")
def test_a_directory_owned_by_someone_else_is_refused(home, fake):
    (home / "run").mkdir(parents=True)
    os.chown(home / "run", 4242, 4242)
    r = cli(user_env(home, fake), "proxy", "start", check=False)
    assert r.returncode != 0 and "belongs to another user" in r.stderr and "Traceback" not in r.stderr


# -- secrets and prompts -------------------------------------------------------------------------------------


def grep_tree(root: Path, needles: dict[str, str]) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            hits += [f"{name} in {p}" for name, n in needles.items() if n.encode() in data]
    return hits


def test_keys_and_prompts_never_reach_disk_logs_env_or_output(home, fake, tmp_path):
    real_a = "sk-ant-api03-REALSECRET-" + secrets.token_hex(12)
    real_o = "sk-proj-REALSECRET-" + secrets.token_hex(12)
    prompt = "PROMPT-MARKER-" + secrets.token_hex(8)
    env = user_env(home, fake, key_mode=False)
    env.update(AGENTMETER_ANTHROPIC_API_KEY=real_a, AGENTMETER_OPENAI_API_KEY=real_o)
    outputs: dict[str, str] = {}

    def run(name: str, *args: str, **kw) -> subprocess.CompletedProcess:
        r = cli(env, *args, check=False, **kw)
        outputs[name] = r.stdout + r.stderr
        return r

    try:
        run("proxy start", "--debug", "proxy", "start", "--json")
        e = json.loads(run("env", "env", "--json").stdout)
        run("env text", "env")
        vkey, a_url, o_url = (
            e["env"]["ANTHROPIC_API_KEY"],
            e["env"]["ANTHROPIC_BASE_URL"],
            e["env"]["OPENAI_BASE_URL"],
        )
        token = a_url.split("/s/")[1].split("/")[0]
        hdrs = {"x-api-key": vkey, "Authorization": f"Bearer {vkey}"}
        msg = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 32,
            "system": f"system {prompt}",
            "messages": [{"role": "user", "content": f"user {prompt}"}],
        }
        for stream in (True, False):
            assert (
                status_of(a_url + "/v1/messages", headers=hdrs, data=json.dumps({**msg, "stream": stream}).encode())[0]
                == 200
            )
        for scenario in ("status:500", "status:400", "reset", "truncate", "error_event"):
            try:
                status_of(
                    a_url + "/v1/messages",
                    headers={**hdrs, "x-fake-scenario": scenario},
                    data=json.dumps({**msg, "stream": True}).encode(),
                )
            except (OSError, http.client.HTTPException):
                pass  # the reset and truncated streams end badly, as they should
        status_of(a_url + "/v1/messages/count_tokens", headers=hdrs, data=json.dumps(msg).encode())
        resp = {"model": "gpt-5.1", "input": f"input {prompt}", "instructions": f"instr {prompt}"}
        assert (
            status_of(o_url + "/responses", headers=hdrs, data=json.dumps({**resp, "stream": True}).encode())[0] == 200
        )
        chat = {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": prompt}]}
        assert status_of(o_url + "/chat/completions", headers=hdrs, data=json.dumps(chat).encode())[0] == 200
        status_of(a_url.replace(token, "badtoken") + "/v1/messages", headers=hdrs, data=json.dumps(msg).encode())

        async def ws() -> None:
            async with aiohttp.ClientSession() as http, http.ws_connect(o_url + "/responses", headers=hdrs) as w:
                await w.send_str(json.dumps({"type": "response.create", **resp}))
                async for m in w:
                    if "response.completed" in m.data:
                        break

        asyncio.run(ws())
        received = json.loads(urllib.request.urlopen(fake.url + "/_fake/received", timeout=10).read())
        assert any(r["headers"].get("x-api-key") == real_a for r in received)  # the swap did happen
        assert any(r["headers"].get("authorization") == f"Bearer {real_o}" for r in received)
        assert any(prompt in json.dumps(r["json"]) for r in received)  # and the prompts did pass through

        run("agent env", "run", "--quiet", "--", "env")
        assert "ANTHROPIC_API_KEY=amk_" in outputs["agent env"]
        for name, args in {
            "sessions": ("sessions", "--json"),
            "show": ("session", "show", e["session_id"], "--json"),
            "status": ("status", "--json"),
            "keys list": ("keys", "list"),
            "config show": ("config", "show"),
            "doctor": ("doctor",),
            "proxy status": ("proxy", "status", "--json"),
            "report": ("report", "--by", "model"),
            "export": ("export", "--format", "jsonl"),
            "debug: failing lookup": ("--debug", "session", "show", "nope"),
            "debug: bad key input": ("--debug", "keys", "set", "anthropic"),
        }.items():
            run(name, *args, input="" if "key input" in name else None)
        assert "Traceback" in outputs["debug: failing lookup"]  # --debug really printed its traceback
    finally:
        run("proxy stop", "--debug", "proxy", "stop")
    # A crash at start-up, with its output and --debug: still nothing.
    (home / "ledger.db").write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    for suffix in ("-wal", "-shm"):
        Path(str(home / "ledger.db") + suffix).unlink(missing_ok=True)
    run("crash at start", "--debug", "proxy", "start")
    assert "doctor --repair" in outputs["crash at start"]

    secrets_ = {"real anthropic key": real_a, "real openai key": real_o, "virtual key": vkey, "session token": token}
    on_disk = grep_tree(home, {**secrets_, "prompt": prompt})
    assert on_disk == [], on_disk
    printed = [
        f"{n} in output of {cmd}"
        for cmd, out in outputs.items()
        for n, v in {"real anthropic key": real_a, "real openai key": real_o, "prompt": prompt}.items()
        if v in out
    ]
    assert printed == [], printed
    assert (home / "log" / "proxy.log").stat().st_size > 0  # the logs exist and were searched


def test_a_key_with_a_line_break_is_never_sent_and_never_a_500(tmp_path):
    stack, close = make_stack(tmp_path, keys={"anthropic": "sk-ant-real\r\nX-Injected: 1", "openai": "sk-real\n"})
    try:
        s = stack.open_session()
        code, body = status_of(
            s["anthropic"] + "/v1/messages",
            headers={"x-api-key": s["virtual_key"]},
            data=b'{"model":"claude-haiku-4-5","max_tokens":1,"messages":[]}',
        )
        assert code == 401 and b"agentmeter keys set anthropic" in body and b"X-Injected" not in body
        assert stack.received() == []
    finally:
        close()


def test_keys_read_from_the_environment_with_a_trailing_newline_still_work(home, fake):
    env = user_env(home, fake, key_mode=False)
    env["AGENTMETER_ANTHROPIC_API_KEY"] = "sk-ant-trailing-newline-000\n"
    try:
        cli(env, "proxy", "start")
        e = json.loads(cli(env, "env", "--json").stdout)
        code, _ = status_of(
            e["env"]["ANTHROPIC_BASE_URL"] + "/v1/messages",
            headers={"x-api-key": e["env"]["ANTHROPIC_API_KEY"]},
            data=b'{"model":"claude-haiku-4-5","max_tokens":1,"messages":[]}',
        )
        assert code == 200
        received = json.loads(urllib.request.urlopen(fake.url + "/_fake/received", timeout=10).read())
        assert received[-1]["headers"]["x-api-key"] == "sk-ant-trailing-newline-000"
    finally:
        cli(env, "proxy", "stop", check=False)


def test_no_port_is_opened_beyond_the_proxy(home, fake):
    """The daemon opens exactly one listening socket (no debug server, no stray listener)."""
    env = user_env(home, fake)
    try:
        st = json.loads(cli(env, "proxy", "start", "--json").stdout)
        inodes = set()
        for fd in Path(f"/proc/{st['pid']}/fd").iterdir():
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        listening = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    listening += 1
        assert listening == 1
        with socket.create_connection(("127.0.0.1", st["port"]), timeout=5):
            pass
    finally:
        cli(env, "proxy", "stop", check=False)


def test_an_ended_sessions_token_opens_nothing(stack):
    s = stack.open_session()
    url = s["anthropic"] + "/v1/models"
    assert status_of(url, "GET", {"x-api-key": "sk-ant-test"})[0] == 200
    code, body = status_of(
        f"{stack.proxy_url}/_agentmeter/v1/sessions/{s['session_id']}/end",
        headers={"Authorization": "Bearer test-control"},
        data=b'{"exit_code": 0}',
    )
    assert code == 200 and json.loads(body) == {"ended": True}
    code, body = status_of(url, "GET", {"x-api-key": "sk-ant-test"})
    assert code == 401 and b"session token" in body  # a token leaked from the agent's old environment is dead


def test_the_daemon_never_writes_a_core_dump(home, fake):
    env = user_env(home, fake)
    try:
        st = json.loads(cli(env, "proxy", "start", "--json").stdout)
        limits = Path(f"/proc/{st['pid']}/limits").read_text()
        core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core  # a core would hold real keys and prompts in flight
    finally:
        cli(env, "proxy", "stop", check=False)
