"""Privacy line: a marker planted in prompts (and in the session's working directory) reaches the provider,
but appears nowhere in what is pushed to the collector, nor anywhere on the collector's disk. Tags given to
`run --tag` are chargeback labels and are pushed (issue 20 item 7)."""

from __future__ import annotations

import json

import anthropic
import openai
from aiohttp import web

from agentmeter.core.clock import SystemClock
from agentmeter.home.config import Config, Identity
from agentmeter.ledger.access import DirectAccess
from agentmeter.sync.client import Target, sync_once
from conftest import make_stack
from pg_cluster import stored_bytes

from .helpers import Collector

MARKER = "ZEBRA-7f3c-PLANTED-MARKER"


def test_marker_in_prompts_never_leaves_the_machine(tmp_path, collector_db):
    seen: list[bytes] = []

    @web.middleware
    async def capture(request, handler):
        seen.append(await request.read())
        return await handler(request)

    collector = Collector(collector_db, middlewares=[capture]).start()
    stack, close = make_stack(tmp_path)
    try:
        s = stack.open_session(
            agent="claude",
            repo="github.com/acme/app",
            branch="main",
            cwd=f"/home/dev/{MARKER}/app",
            tags={"ticket": "T-4242"},
        )
        client = anthropic.Anthropic(base_url=s["anthropic"], api_key="sk-ant-test-client-0000", max_retries=0)
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=20,
            system=f"system {MARKER}",
            messages=[{"role": "user", "content": f"please remember {MARKER}"}],
        )
        oa = openai.OpenAI(base_url=s["openai"], api_key="sk-test-client-0000", max_retries=0)
        oa.responses.create(model="gpt-5.1", input=f"and {MARKER} again")
        assert sum(MARKER in json.dumps(r.json) for r in stack.received()) == 2  # it did reach the provider

        config = Config(identity=Identity(developer="alice@example.com", team="payments"))
        access = DirectAccess(stack.ledger_path)
        try:
            result = sync_once(
                access, config, SystemClock(), target_=Target(collector.url, collector.token("alice@example.com"))
            )
        finally:
            access.close()
        assert result["ok"] and result["pushed"]["rollups"] == 2 and result["pushed"]["sessions"] == 1, result
        assert collector.totals()["requests"] == 2
    finally:
        close()
        collector.close()

    pushed = b"".join(seen)
    assert b'"rollups"' in pushed and b"github.com/acme/app" in pushed  # the capture saw the real pushes
    assert MARKER.encode() not in pushed
    assert b"/home/dev" not in pushed  # no working directory, only the repo's identity
    assert b'"tags":{"ticket":"T-4242"}' in pushed  # the chargeback label, as given
    on_disk = stored_bytes(collector_db)
    assert on_disk and MARKER.encode() not in on_disk
