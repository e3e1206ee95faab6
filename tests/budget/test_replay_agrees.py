"""`agentmeter budget test` replays the ledger through the same policy the proxy used live: on the same ledger,
caps and time zone, the replay decides every request exactly as the proxy did (DESIGN section 4, dry run)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agentmeter import pricing
from agentmeter.budget import cascade
from agentmeter.budget.replay import replay
from agentmeter.core.models import PriceRate
from agentmeter.core.timezone import resolve_tz
from agentmeter.home.config import Alerts, Budget, Caps, Config
from agentmeter.ledger import open_ledger
from agentmeter.ledger.store import usage_of
from conftest import make_stack

PRICES = {
    "anthropic:claude-opus-4-8": PriceRate(10.0, 50.0),
    "anthropic:claude-sonnet-4-6": PriceRate(4.0, 20.0),
    "anthropic:claude-haiku-4-5": PriceRate(1.0, 5.0),
    "openai:gpt-5.1": PriceRate(2.0, 10.0),
    "openai:gpt-5.1-mini": PriceRate(0.5, 2.0),
}
RATE = {k.split(":", 1)[1]: v for k, v in PRICES.items()}
ANTHROPIC_MODELS = ("claude-opus-4-8", "claude-sonnet-4-6", "claude-haiku-4-5")
KINDS = ("anth_text", "anth_text", "anth_tool_err", "anth_tool_ok", "responses", "chat", "count_tokens")
AGENTS = ("claude", "codex", "test")

step = st.fixed_dictionaries(
    {
        "session": st.integers(0, 2),
        "kind": st.sampled_from(KINDS),
        "model": st.sampled_from(ANTHROPIC_MODELS),
        "big": st.booleans(),
        "stream": st.booleans(),
        "subscription": st.integers(0, 5).map(lambda n: n == 0),
        "input": st.integers(0, 60_000),
        "output": st.integers(0, 4_000),
    }
)
scenario = st.fixed_dictionaries(
    {
        "steps": st.lists(step, min_size=3, max_size=16),
        "daily_factor": st.floats(0.15, 1.6),
        "token_cap": st.one_of(st.none(), st.integers(20_000, 300_000)),
        "codex_cap": st.one_of(st.none(), st.floats(0.05, 1.5)),
        "session_budget": st.one_of(st.none(), st.floats(0.05, 1.5)),
        "retry_cap": st.integers(1, 3),
        "downgrade_at": st.sampled_from([0.5, 0.7, 0.95]),
        "block_at": st.sampled_from([1.0, 1.1, 1.5]),
    }
)


def approx_cost(s: dict) -> float:
    model = "gpt-5.1" if s["kind"] in ("responses", "chat") else s["model"]
    if s["kind"] == "count_tokens":
        return 0.0
    r = RATE[model]
    return (s["input"] * r.input + s["output"] * r.output) / 1e6


def request_for(i: int, s: dict, session: dict) -> urllib.request.Request:
    pad = " pad" * 500 if s["big"] else ""
    usage = {"input_tokens": s["input"], "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": s["output"]}
    headers = {"content-type": "application/json", "x-fake-usage": json.dumps(usage)}
    kind = s["kind"]
    if kind in ("responses", "chat"):
        url = session["openai"] + ("/responses" if kind == "responses" else "/chat/completions")
        if kind == "responses":
            body = {
                "model": "gpt-5.1",
                "stream": s["stream"],
                "input": [
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"task {i}{pad}"}]}
                ],
            }
        else:
            body = {"model": "gpt-5.1", "stream": s["stream"], "messages": [{"role": "user", "content": f"q {i}{pad}"}]}
        headers["authorization"] = "Bearer sk-test-client"
    else:
        url = session["anthropic"] + ("/v1/messages/count_tokens" if kind == "count_tokens" else "/v1/messages")
        history = [
            {"role": "user", "content": "start"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"toolu_{i}", "name": "bash", "input": {"command": "make"}}],
            },
        ]
        if kind in ("anth_tool_err", "anth_tool_ok"):
            last = {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"toolu_{i}",
                        "content": f"result {i}{pad}",
                        "is_error": kind == "anth_tool_err",
                    }
                ],
            }
        else:
            last = {"role": "user", "content": f"question {i}{pad}"}
        body = {"model": s["model"], "max_tokens": 2048, "messages": [*history, last]}
        if kind != "count_tokens":
            body["stream"] = s["stream"]
        key = "sk-ant-oat01-subscription" if s["subscription"] else "sk-ant-test-client"
        headers["authorization" if s["subscription"] else "x-api-key"] = f"Bearer {key}" if s["subscription"] else key
    return urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")


def send(req: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sc=scenario)
def test_replay_decides_like_the_live_proxy(sc, tmp_path_factory):
    total = sum(approx_cost(s) for s in sc["steps"]) or 0.01
    budget = Budget(
        caps=Caps(daily_usd=round(max(total * sc["daily_factor"], 0.001), 6), daily_tokens=sc["token_cap"]),
        agents={"codex": Caps(daily_usd=sc["codex_cap"])} if sc["codex_cap"] else {},
        easy_turn_tokens=300,
        retry_cap=sc["retry_cap"],
        alert_at=0.4,
        downgrade_at=sc["downgrade_at"],
        block_at=sc["block_at"],
    )
    config = Config(budget=budget, prices=PRICES, alerts=Alerts(desktop=False))
    stack, close = make_stack(tmp_path_factory.mktemp("replay"), config=config)
    try:
        sessions = [
            stack.open_session(agent=AGENTS[n], budget_usd=sc["session_budget"] if n == 1 else None) for n in range(3)
        ]
        statuses = [send(request_for(i, s, sessions[s["session"]])) for i, s in enumerate(sc["steps"])]
        assert stack.state.enforcer.in_flight == 0
    finally:
        close()

    ledger = open_ledger(stack.ledger_path, readonly=True)
    try:
        rows = ledger.replay_rows(0)
    finally:
        ledger.close()
    assert len(rows) == len(sc["steps"])
    # what the client saw is what the ledger says
    for row, status in zip(rows, statuses, strict=True):
        assert (status == 429) == (row["decision"] == "refuse"), (row, status)

    def target(row: dict) -> str | None:
        return cascade.next_cheaper(
            row["provider"], row.get("model_used") or row.get("model_requested"), config.cascade
        )

    def cheaper(row: dict, model: str) -> float:
        return pricing.price(row["provider"], model, usage_of(row), overrides=config.prices).usd or 0.0

    result = replay(rows, budget, resolve_tz(budget.timezone), cascade_target=target, downgraded_cost=cheaper)
    live = [(r["request_id"], r["decision"], r["reason"] if r["decision"] == "refuse" else None) for r in rows]
    replayed = [(rid, action, reason if action == "refuse" else None) for rid, action, reason in result.decisions]
    assert replayed == live
    for kind in sorted({d for _, d, _ in live}):
        event(f"live decision {kind}")
    # nothing was refused in the replay that the proxy let through, so nothing is "saved" or lost
    assert abs(result.saved_usd) < 1e-9
