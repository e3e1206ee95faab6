"""Client ledgers pushed to a real collector on loopback: the collector's totals equal the clients' after
repeated pushes, a collector restart, an outage with queued pushes, and 20 clients pushing at once."""

from __future__ import annotations

import threading

import pytest

from agentmeter.home.config import Config
from agentmeter.ledger import open_ledger
from agentmeter.ledger import sync as q
from agentmeter.sync.client import backoff_s
from agentmeter.sync.payload import item_key

from .helpers import Client, Collector, assert_same, summed


@pytest.fixture
def collector(collector_db):
    c = Collector(collector_db).start()
    yield c
    c.close()


def test_repeated_pushes_replace_and_never_add(tmp_path, collector):
    alice_laptop = Client(tmp_path / "a1", "alice@example.com", "payments", collector.token("alice@example.com"))
    alice_desktop = Client(tmp_path / "a2", "alice@example.com", "payments", alice_laptop.token)
    bob = Client(tmp_path / "b", "bob@example.com", "search", collector.token("bob@example.com", "search"))
    clients = [alice_laptop, alice_desktop, bob]
    alice_laptop.add_usage(5, day=0)
    alice_laptop.add_usage(2, day=1, agent="codex", model="gpt-5.1")
    alice_desktop.add_usage(3, day=0)  # same day, agent, model and repo as the laptop: must add up, not collide
    bob.add_usage(4, day=1, repo="github.com/acme/search")

    first = [c.sync(collector.url) for c in clients]
    assert all(r["ok"] for r in first), first
    assert first[0]["pushed"] == {"rollups": 2, "sessions": 2, "deleted": 0, "plan_windows": 0}
    assert_same(collector.totals(), summed(clients))

    again = [c.sync(collector.url) for c in clients]
    assert all(r["ok"] and r["pushed"]["rollups"] == 0 and r["pushed"]["sessions"] == 0 for r in again), again
    assert_same(collector.totals(), summed(clients))

    # A row that grew is replaced by its new value: forget what was pushed, so everything goes out again.
    alice_laptop.add_usage(1, day=0)
    ledger = open_ledger(bob.path)
    ledger.conn.execute("DELETE FROM sync_pushed")
    ledger.close()
    for c in clients:
        assert c.sync(collector.url)["ok"]
    assert_same(collector.totals(), summed(clients))
    by_dev = {r["key"]: r for r in collector_report(collector, "developer")}
    assert by_dev["alice@example.com"]["requests"] == 11 and by_dev["bob@example.com"]["requests"] == 4
    assert collector.totals()["sessions"] == 4


def collector_report(collector, by):
    from agentmeter.collector.store import open_store

    store = open_store(collector.db)
    try:
        return store.report(by)
    finally:
        store.close()


def test_keys_are_deterministic_and_per_device():
    a = item_key("dev-1", "rollup", "2026-11-18", "claude", "anthropic", "m", "r", 0)
    assert a == item_key("dev-1", "rollup", "2026-11-18", "claude", "anthropic", "m", "r", 0)
    assert a != item_key("dev-2", "rollup", "2026-11-18", "claude", "anthropic", "m", "r", 0)


def test_collector_restart_keeps_totals(tmp_path, collector):
    c = Client(tmp_path / "c", "carol@example.com", "infra", collector.token("carol@example.com"))
    c.add_usage(6)
    assert c.sync(collector.url)["ok"]
    collector.stop()
    collector.start()  # same port, same database
    r = c.sync(collector.url)
    assert r["ok"] and r["pushed"]["rollups"] == 0
    c.add_usage(2)
    assert c.sync(collector.url)["ok"]
    assert_same(collector.totals(), c.totals())


def test_a_new_collector_database_gets_everything_again(tmp_path, collector, make_collector_db):
    c = Client(tmp_path / "c", "carol@example.com", "infra", collector.token("carol@example.com"))
    c.add_usage(3)
    assert c.sync(collector.url)["ok"]
    other = Collector(make_collector_db("new")).start()
    try:
        r = c.sync(other.url, other.token("carol@example.com"))
        assert r["ok"] and r["pushed"]["rollups"] == 1  # a different collector id: nothing assumed pushed
        assert_same(other.totals(), c.totals())
    finally:
        other.close()


def test_outage_queues_with_backoff_and_loses_nothing(tmp_path, collector):
    c = Client(tmp_path / "c", "dan@example.com", "infra", collector.token("dan@example.com"))
    c.add_usage(2)
    assert c.sync(collector.url)["ok"]
    collector.stop()
    c.add_usage(3, day=1)
    down = c.sync(collector.url)
    assert not down["ok"] and down["error"]["kind"] == "unreachable"
    st = c.state()
    assert st[q.FAILURES] == "1" and st[q.FAILING_SINCE] and int(st[q.PENDING]) == 2  # a rollup row + a session
    first_wait = int(st[q.NEXT_ATTEMPT_AT]) - int(st[q.LAST_ATTEMPT_AT])
    c.add_usage(1, day=2)
    assert not c.sync(collector.url)["ok"]
    st2 = c.state()
    assert st2[q.FAILURES] == "2" and st2[q.FAILING_SINCE] == st[q.FAILING_SINCE]
    assert int(st2[q.NEXT_ATTEMPT_AT]) - int(st2[q.LAST_ATTEMPT_AT]) == 2 * first_wait == backoff_s(2) * 1000

    collector.start()
    back = c.sync(collector.url)
    assert back["ok"] and back["pushed"]["rollups"] == 2, back
    st3 = c.state()
    assert q.FAILING_SINCE not in st3 and q.NEXT_ATTEMPT_AT not in st3 and st3[q.FAILURES] == "0"
    assert_same(collector.totals(), c.totals())


def test_a_rollup_row_gone_from_the_ledger_is_removed_there(tmp_path, collector):
    c = Client(tmp_path / "c", "erin@example.com", None, collector.token("erin@example.com"))
    c.add_usage(2, day=0)
    c.add_usage(2, day=1)
    assert c.sync(collector.url)["ok"]
    ledger = open_ledger(c.path)
    ledger.conn.execute("DELETE FROM requests WHERE started_at >= ?", (1_795_000_000_000 + 86_400_000,))
    ledger._rebuild_rollup()  # what `agentmeter reprice` does after its updates
    ledger.close()
    r = c.sync(collector.url)
    assert r["ok"] and r["pushed"]["deleted"] == 2, r  # the day-1 rollup row and its now-empty session
    assert_same(collector.totals(), c.totals())


def test_twenty_clients_push_concurrently(tmp_path, collector):
    clients = []
    for i in range(20):
        dev = f"dev{i:02d}@example.com"
        cl = Client(tmp_path / f"c{i}", dev, f"team{i % 3}", collector.token(dev, f"team{i % 3}"))
        cl.add_usage(3 + i % 4, day=i % 3)
        cl.add_usage(1, day=2, agent="codex", model="gpt-5.1")
        clients.append(cl)

    def round_() -> list:
        results: list = [None] * len(clients)
        barrier = threading.Barrier(len(clients))

        def run(i: int) -> None:
            barrier.wait()
            results[i] = clients[i].sync(collector.url)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return results

    assert all(r["ok"] for r in round_())
    assert_same(collector.totals(), summed(clients))
    for cl in clients[::2]:
        cl.add_usage(2, day=2)
    assert all(r["ok"] for r in round_())
    totals = collector.totals()
    assert_same(totals, summed(clients))
    assert totals["developers"] == 20


def test_no_collector_configured_is_a_clear_error(home):
    from agentmeter.core.clock import SystemClock
    from agentmeter.core.errors import ConfigError
    from agentmeter.sync.client import sync_now

    with pytest.raises(ConfigError, match="no collector configured"):
        sync_now(Config(), SystemClock())


def test_url_and_token_come_from_env_first_then_config_and_the_key_store(home, monkeypatch):
    from agentmeter.home.config import Sync
    from agentmeter.home.secrets import set_secret
    from agentmeter.sync.client import target

    assert target(Config()) is None
    assert set_secret("collector", "amc_from-the-store") == "file"  # no real keyring in tests: the 0600 file
    got = target(Config(sync=Sync(collector="https://collector.example.com/")))
    assert (got.url, got.token) == ("https://collector.example.com", "amc_from-the-store")
    monkeypatch.setenv("AGENTMETER_COLLECTOR_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AGENTMETER_COLLECTOR_TOKEN", "amc_from-env")
    got = target(Config(sync=Sync(collector="https://collector.example.com")))
    assert (got.url, got.token) == ("http://127.0.0.1:1", "amc_from-env")
