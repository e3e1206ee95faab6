"""The suite's load generator: Claude Code-like streamed requests against several contenders, interleaved.

A *contender* is a URL plus headers that reach the same fake upstream (directly, through agentmeter, through
LiteLLM). Load is closed-loop: `conc` workers each send one request after another for a slice of time.
Slices of the contenders alternate (ABC, BCA, CAB, …) so machine drift hits all alike, and worker w of
slice j sends the same sequence of request shapes to every contender, so they see the same work.

Request shapes (`Spec`): a 50–200 KB body built like a Claude Code turn (system blocks, ~16 tool schemas,
a conversation of tool_use / tool_result pairs with file contents), and a streamed answer of 40–400 SSE
events (log-uniform: many short tool-call turns, some long ones), 8–64 bytes of text per delta, written one
event at a time with a per-stream pace. The fake reads the shape from a marker in the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from array import array
from dataclasses import dataclass, field
from functools import lru_cache

import aiohttp

PLACEHOLDER = b"@@BENCH-MARKER@@"

_WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "for",
    "on",
    "that",
    "with",
    "as",
    "it",
    "be",
    "this",
    "are",
    "by",
    "from",
    "or",
    "at",
    "an",
    "not",
    "was",
    "but",
    "if",
    "all",
    "can",
    "will",
    "file",
    "function",
    "return",
    "value",
    "error",
    "test",
    "proxy",
    "request",
    "response",
    "stream",
    "token",
    "model",
    "budget",
    "ledger",
    "session",
    "import",
    "class",
    "def",
    "self",
    "async",
    "await",
    "None",
    "True",
    "False",
    "raise",
    "except",
    "try",
    "path",
    "config",
    "user",
    "agent",
    "tool",
    "result",
    "src/agentmeter/proxy/app.py",
    "tests/test_ledger.py",
    "README.md",
    '{"key":',
    '"value"}',
    "x",
    "=",
    "foo(bar,",
    "baz=1)",
]


def _prose(rng: random.Random, n: int) -> str:
    out: list[str] = []
    size = 0
    while size < n:
        w = rng.choice(_WORDS)
        if rng.random() < 0.08:
            w += "\n" + "    " * rng.randrange(3)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n]


@lru_cache(maxsize=1)
def _fixed_parts() -> tuple[list, list]:
    rng = random.Random(1)
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": _prose(rng, 10_000), "cache_control": {"type": "ephemeral"}},
    ]
    names = [
        "Task",
        "Bash",
        "Glob",
        "Grep",
        "ExitPlanMode",
        "Read",
        "Edit",
        "Write",
        "NotebookEdit",
        "WebFetch",
        "TodoWrite",
        "WebSearch",
        "BashOutput",
        "KillShell",
        "SlashCommand",
        "MultiEdit",
    ]
    tools = []
    for name in names:
        props = {
            f"param_{i}": {
                "type": rng.choice(["string", "number", "boolean"]),
                "description": _prose(rng, rng.randrange(60, 240)),
            }
            for i in range(rng.randrange(2, 7))
        }
        tools.append(
            {
                "name": name,
                "description": _prose(rng, rng.randrange(300, 1800)),
                "input_schema": {
                    "type": "object",
                    "properties": props,
                    "required": sorted(props)[:2],
                    "additionalProperties": False,
                    "$schema": "http://json-schema.org/draft-07/schema#",
                },
            }
        )
    return system, tools


@lru_cache(maxsize=1024)
def body_template(kb: int) -> bytes:
    """A Claude Code-like /v1/messages body of exactly `kb` KiB (with the placeholder in the first user text)."""
    rng = random.Random(kb)
    system, tools = _fixed_parts()
    messages: list[dict] = [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": PLACEHOLDER.decode() + " <system-reminder>\nAs you answer the user's questions, "
                    "you can use the following context:\n" + _prose(rng, 1500) + "\n</system-reminder>",
                },
                {
                    "type": "text",
                    "text": "the test in tests/test_ledger.py fails after the last change; find out why",
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        }
    ]

    def doc() -> dict:
        return {
            "model": "claude-sonnet-4-5",
            "messages": messages,
            "temperature": 1,
            "system": system,
            "tools": tools,
            "metadata": {"user_id": "user_0f3e_account__session_5b2a"},
            "max_tokens": 32000,
            "stream": True,
        }

    target = kb * 1024
    size = len(json.dumps(doc()))  # grown incrementally: each message adds its own length and ", "
    i = 0
    while size < target - 6000:
        tid = f"toolu_{kb:03d}{i:05d}"
        pair = [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": _prose(rng, rng.randrange(40, 400))},
                    {
                        "type": "tool_use",
                        "id": tid,
                        "name": rng.choice(["Read", "Bash", "Grep", "Edit"]),
                        "input": {"file_path": f"/home/dev/src/module_{i}.py", "limit": 400},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tid, "content": _prose(rng, rng.randrange(1500, 5000))}
                ],
            },
        ]
        messages.extend(pair)
        size += sum(len(json.dumps(m)) + 2 for m in pair)
        i += 1
    last = messages[-1]["content"][0] if len(messages) > 1 else messages[0]["content"][1]
    key = "content" if "content" in last else "text"
    last[key] += "x" * max(0, target - len(json.dumps(doc())))
    raw = json.dumps(doc()).encode()
    return raw


def prebuild(work: Workload) -> None:
    """Build every body template before measuring (building one inside a slice would stall the client)."""
    for kb in range(work.body_kb[0], work.body_kb[1] + 1):
        body_template(kb)


@dataclass(frozen=True)
class Spec:
    body_kb: int
    deltas: int  # content deltas; the stream has deltas + 6 events
    delta_bytes: int
    pace_us: int

    @property
    def events(self) -> int:
        return self.deltas + 6

    @property
    def schedule_ms(self) -> float:
        """When the fake writes the last event, counted from the first (it paces on a fixed schedule)."""
        return (self.events - 1) * self.pace_us / 1000


@dataclass(frozen=True)
class Workload:
    body_kb: tuple[int, int] = (50, 200)
    events: tuple[int, int] = (40, 400)
    delta_bytes: tuple[int, int] = (8, 64)
    pace_ms: float = 2.0  # mean gap between events; each stream draws its own in [0.5, 1.5] x this

    def spec(self, rng: random.Random) -> Spec:
        lo, hi = self.events
        events = round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        pace = self.pace_ms * rng.uniform(0.5, 1.5)
        return Spec(rng.randint(*self.body_kb), max(1, events - 6), rng.randint(*self.delta_bytes), int(pace * 1000))


_nonce = 0


def request_body(spec: Spec) -> bytes:
    global _nonce
    _nonce += 1
    marker = b"[[bench %d %d %d %d]]" % (spec.deltas, spec.delta_bytes, spec.pace_us, _nonce)
    return body_template(spec.body_kb).replace(PLACEHOLDER, marker, 1)


CLAUDE_HEADERS = {
    "Content-Type": "application/json",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    "User-Agent": "claude-cli/2.1.197 (external, cli)",
    "x-app": "cli",
    "x-claude-code-session-id": "bench-0000",
    "Accept": "application/json",
}


@dataclass
class Target:
    name: str
    url: str
    headers: dict


@dataclass
class Stats:
    """What one contender measured at one concurrency."""

    ttfb: array = field(default_factory=lambda: array("d"))
    total: array = field(default_factory=lambda: array("d"))
    excess: array = field(default_factory=lambda: array("d"))  # total minus the stream's own schedule
    gaps: array = field(default_factory=lambda: array("d"))
    errors: list[str] = field(default_factory=list)
    busy_s: float = 0.0
    events: int = 0
    answers: set = field(default_factory=set)  # the provider's request ids seen (a repeat is a cached answer)

    @property
    def n(self) -> int:
        return len(self.total)

    def summary(self) -> dict:
        return {
            "n": self.n,
            "errors": len(self.errors),
            "ttfb_p50_ms": pct(self.ttfb, 50),
            "ttfb_p99_ms": pct(self.ttfb, 99),
            "total_p50_ms": pct(self.total, 50),
            "total_p99_ms": pct(self.total, 99),
            "excess_p50_ms": pct(self.excess, 50),
            "excess_p99_ms": pct(self.excess, 99),
            "gap_p50_ms": pct(self.gaps, 50),
            "gap_p99_ms": pct(self.gaps, 99),
            "rps": self.n / self.busy_s if self.busy_s else float("nan"),
            "events_per_s": self.events / self.busy_s if self.busy_s else float("nan"),
            "first_errors": self.errors[:3],
        }


def pct(values, p: float) -> float:
    if not len(values):
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


DELTA = b'"content_block_delta"'
RAMP_S = 0.25


async def one(http: aiohttp.ClientSession, t: Target, spec: Spec, st: Stats | None) -> bool:
    """One streamed request. Anything but a 200 with every delta and the terminal event counts as an error, and
    so does an answer whose provider request id was seen before (a cached or replayed answer)."""
    body = request_body(spec)
    t0 = time.perf_counter()
    first = last = 0.0
    gaps = array("d")
    carry = tail = b""
    deltas = 0
    try:
        async with http.post(t.url, data=body, headers={**t.headers, "x-bench-contender": t.name}) as r:
            async for chunk in r.content.iter_any():
                now = time.perf_counter()
                if first:
                    gaps.append((now - last) * 1000)
                else:
                    first = now
                last = now
                window = carry + chunk
                deltas += window.count(DELTA)
                carry = window[-(len(DELTA) - 1) :]
                tail = (tail + chunk)[-64:]
            t1 = time.perf_counter()
            if r.status != 200 or deltas != spec.deltas or b"message_stop" not in tail:
                raise ValueError(f"HTTP {r.status}, {deltas} of {spec.deltas} deltas, ends {tail[-40:]!r}")
            rid = r.headers.get("request-id")
            if st is not None and rid:
                if rid in st.answers:
                    raise ValueError(f"answer {rid} seen before: a cached or replayed answer, not the provider's")
                st.answers.add(rid)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        if st is not None:
            st.errors.append(f"{t.name}: {type(exc).__name__}: {exc}"[:300])
        return False
    if st is not None:
        st.ttfb.append((first - t0) * 1000)
        st.total.append((t1 - t0) * 1000)
        st.excess.append((t1 - t0) * 1000 - spec.schedule_ms)
        st.gaps.extend(gaps)
        st.events += spec.events
    return True


async def closed_loop(http, t: Target, work: Workload, conc: int, seconds: float, seed: int, st: Stats | None) -> int:
    """`conc` workers, each sending requests back to back until `seconds` pass; returns requests completed."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker(w: int) -> None:
        nonlocal done
        rng = random.Random(seed * 1000 + w)
        await asyncio.sleep(RAMP_S * w / conc)  # staggered starts: agents are not synchronised
        while time.perf_counter() < deadline:
            if await one(http, t, work.spec(rng), st):
                done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conc)))
    if st is not None:
        st.busy_s += time.perf_counter() - t0
    return done


async def interleaved(
    http,
    targets: list[Target],
    work: Workload,
    conc: int,
    slices: int,
    seconds: float,
    seed: int,
    between=None,
    label: str = "",
) -> dict[str, Stats]:
    """`slices` rounds; each runs every target for `seconds`, in rotated order."""
    stats = {t.name: Stats() for t in targets}
    k = len(targets)
    for j in range(slices):
        order = [targets[(j + i) % k] for i in range(k)]
        for t in order:
            await closed_loop(http, t, work, conc, seconds, seed + j, stats[t.name])
            if between is not None:
                await between(t.name)
        if label:
            msg = ", ".join(f"{n} {s.n}" for n, s in stats.items())
            print(f"  {label}: slice {j + 1}/{slices} ({msg})", flush=True, file=__import__("sys").stderr)
    return stats


def new_session(conc_limit: int = 0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=conc_limit, keepalive_timeout=30),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=300, sock_connect=10),
        skip_auto_headers=("User-Agent",),
    )


def rss_kb(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None
