"""What the budget check remembers between requests to stay off the path to the first byte (issue 17.5) must
never outlive what it was made from: the cascade's next cheaper model follows a [cascade] edit picked up by the
reload, and a reservation priced only when another check reads it counts exactly what pricing it at once did."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentmeter import pricing
from agentmeter.core.clock import FixedClock
from agentmeter.core.models import Session, Usage
from agentmeter.home.config import Budget, Caps, Config, load_config
from agentmeter.ledger import open_ledger
from agentmeter.ledger.store import SpendTotals
from agentmeter.providers.request import read_body
from agentmeter.proxy.enforce import Enforcer

MODEL = "claude-opus-4-8"


@pytest.fixture
def ledger(tmp_path):
    path = tmp_path / "ledger.db"
    open_ledger(path).close()
    lg = open_ledger(path, readonly=True)
    yield lg
    lg.close()


def check(enf: Enforcer, rid: str, session: Session, body: bytes = b""):
    raw = body or b'{"model":"%s","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}' % MODEL.encode()
    facts = read_body(raw)
    return enf.check(
        request_id=rid,
        session=session,
        provider="anthropic",
        api="messages",
        model=facts.model,
        body=facts,
        body_len=len(raw),
        subscription=False,
        agent_session=None,
        billable=True,
    )


def test_the_next_cheaper_model_follows_a_cascade_edit_picked_up_by_the_reload(ledger, tmp_path):
    clock = FixedClock(datetime(2026, 12, 4, 12, tzinfo=UTC))
    path = tmp_path / "config.toml"
    path.write_text('[cascade]\nanthropic = ["claude-opus-4-8", "claude-sonnet-4-6"]\n')
    enf = Enforcer(load_config(path), ledger, SpendTotals(UTC), UTC, clock, config_path=path)
    session = Session(id="s1", started_at_ms=clock.now_ms(), agent="claude")
    assert check(enf, "r1", session).downgrade_to == "claude-sonnet-4-6"
    assert check(enf, "r2", session).downgrade_to == "claude-sonnet-4-6"  # remembered

    path.write_text('[cascade]\nanthropic = ["claude-opus-4-8", "claude-haiku-4-5"]\n')
    clock.advance(1.5)  # the reload looks at the file at most once a second
    assert check(enf, "r3", session).downgrade_to == "claude-haiku-4-5"


def test_a_reservation_priced_when_read_counts_what_pricing_it_at_once_did(ledger):
    clock = FixedClock(datetime(2026, 12, 4, 12, tzinfo=UTC))
    config = Config(budget=Budget(caps=Caps(daily_usd=1000.0)))
    enf = Enforcer(config, ledger, SpendTotals(UTC), UTC, clock)
    session = Session(id="s1", started_at_ms=clock.now_ms(), agent="claude")
    body = b'{"model":"%s","max_tokens":2000,"messages":[{"role":"user","content":"%s"}]}' % (
        MODEL.encode(),
        b"x" * 4000,
    )
    check(enf, "r1", session, body)
    est_in, est_out = len(body) // 4, 2000
    want = pricing.price("anthropic", MODEL, Usage(input_tokens=est_in, output_tokens=est_out)).usd
    assert want and want > 0
    day = next(w for w in check(enf, "r2", session, body).windows if w.name == "day")
    assert day.spent_usd == pytest.approx(want)  # r1's reservation, read (and priced) by r2's check
    assert day.spent_tokens == est_in + est_out
    enf.release("r1")
    enf.release("r2")
    day = next(w for w in check(enf, "r3", session, body).windows if w.name == "day")
    assert day.spent_usd == 0 and day.spent_tokens == 0
