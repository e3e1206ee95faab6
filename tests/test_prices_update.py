"""Issue 15: `agentmeter prices update` from a local file and a local HTTP server (no internet): new models
priced, old rows re-priced on request, bad data refused with the old data kept, the running proxy picks up
new data without a restart, and the cache is private."""

from __future__ import annotations

import json
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import pytest

from agentmeter.home.paths import get_paths
from conftest import run_cli

FAKE_KEY = "sk-ant-test-client-key-0000"
M = 1_000_000


def price_data(zephyr_input: float = 2.0) -> list[dict]:
    """genai-prices' data format (the provider array of prices/new_data/v2/data.json), trimmed to a few models;
    `claude-zephyr-9` is a model genai-prices 0.2.3 does not know."""
    return [
        {
            "id": "anthropic",
            "name": "Anthropic",
            "api_pattern": r"https://api\.anthropic\.com",
            "models": [
                {
                    "id": "claude-sonnet-4-5",
                    "match": {"starts_with": "claude-sonnet-4-5"},
                    "prices": {"input_mtok": 3, "output_mtok": 15, "cache_read_mtok": 0.3, "cache_write_mtok": 3.75},
                },
                {
                    "id": "claude-zephyr-9",
                    "match": {"starts_with": "claude-zephyr-9"},
                    "prices": {"input_mtok": zephyr_input, "output_mtok": 10},
                },
            ],
        },
        {
            "id": "openai",
            "name": "OpenAI",
            "api_pattern": r"https://api\.openai\.com",
            "models": [
                {"id": "gpt-5", "match": {"equals": "gpt-5"}, "prices": {"input_mtok": 1.25, "output_mtok": 10}},
            ],
        },
        {"id": "somewhere-else", "name": "Not kept", "api_pattern": "x", "models": []},
    ]


class _Server:
    def __init__(self, body: bytes) -> None:
        outer = self
        self.body = body
        self.hits = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture(autouse=True)
def bundled_data_after():
    """This process loaded the test's cached data; later tests in the same worker start from the bundle."""
    yield
    from genai_prices import data_snapshot

    from agentmeter.pricing import data

    data_snapshot.set_custom_snapshot(None)
    data._loaded["key"] = None


@pytest.fixture
def server():
    s = _Server(json.dumps(price_data()).encode())
    yield s
    s.close()


def explain(model: str) -> dict:
    r = run_cli("prices", "explain", model, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_update_from_local_http_server_prices_new_model_and_reprices_old_rows(stack, server):
    # A request for a model the bundled data does not know: flagged, estimated.
    s = stack.open_session()
    stack.configure(
        usage={"input_tokens": 100_000, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 10_000}
    )
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0)
    client.messages.create(model="claude-zephyr-9", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    before = stack.rows(s["session_id"])[0]
    assert before["unpriced"] == 1 and before["price_source"] in ("estimate", "fallback")
    assert "claude-zephyr-9" in before["reason"]
    assert explain("claude-zephyr-9")["unpriced"] is True

    r = run_cli("prices", "update", "--url", server.url, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["schema"] == "agentmeter.prices_update/1" and out["after"]["source"] == "cache"
    assert out["after"]["url"] == server.url and server.hits == 1
    cache = get_paths().data_dir / "prices.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    e = explain("claude-zephyr-9")
    assert (e["source"], e["unpriced"], e["input"]) == ("genai-prices", False, 2.0)
    assert e["data"]["source"] == "cache" and e["data"]["date"] == out["after"]["date"]

    # The running proxy (same process as before the update) prices the new model now, no restart.
    client.messages.create(model="claude-zephyr-9", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    fresh = stack.rows(s["session_id"])[1]
    assert fresh["unpriced"] == 0 and fresh["price_source"] == "genai-prices"
    assert fresh["cost_usd"] == pytest.approx(100_000 * 2 / M + 10_000 * 10 / M, abs=1e-9)

    # The old row only changes when asked: a dry run shows it, reprice fixes it and its stale reason. (The
    # stack's ledger is its own file, so reprice runs in-process here; the CLI path is in the import tests.)
    from agentmeter.commands.reprice import reprice
    from agentmeter.home.config import Config
    from agentmeter.ledger import open_ledger

    def run(dry_run: bool) -> dict:
        lg = open_ledger(stack.ledger_path)
        try:
            return reprice(Config(), lg, dry_run=dry_run)
        finally:
            lg.close()

    dry = run(True)
    assert dry["dry_run"] is True and dry["changed"] == 1
    assert dry["models"][0]["model"] == "anthropic:claude-zephyr-9"
    assert stack.rows(s["session_id"])[0]["unpriced"] == 1
    assert run(False)["changed"] == 1
    old = stack.rows(s["session_id"])[0]
    assert old["unpriced"] == 0 and old["reason"] is None and old["cost_usd"] == pytest.approx(fresh["cost_usd"])
    assert run(False)["changed"] == 0


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html>captive portal</html>", "not JSON"),
        (json.dumps({"providers": []}).encode(), "provider array"),
        (json.dumps(price_data()[2:]).encode(), "no anthropic or openai prices"),
        (
            json.dumps(
                [{**price_data()[0], "models": [{"id": "x", "prices": {"input_mtok": "cheap"}}]}, price_data()[1]]
            ).encode(),
            "does not validate",
        ),
        (
            json.dumps([{**price_data()[0], "models": price_data()[0]["models"][1:]}, price_data()[1]]).encode(),
            "cannot price anthropic:claude-sonnet-4-5",
        ),
    ],
)
def test_bad_data_is_refused_and_the_old_data_kept(tmp_path, body, says):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(price_data(zephyr_input=2.0)))
    assert run_cli("prices", "update", "--file", str(good)).returncode == 0
    cache = get_paths().data_dir / "prices.json"
    kept = cache.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_bytes(body)
    r = run_cli("prices", "update", "--file", str(bad))
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert err[0].startswith(f"agentmeter: refused price data from {bad}") and says in err[0], r.stderr
    assert "Traceback" not in r.stderr and "prices in force are kept (cache data of" in r.stderr
    assert cache.read_bytes() == kept
    assert explain("claude-zephyr-9")["input"] == 2.0


def test_unreachable_url_keeps_bundled_data(tmp_path):
    s = _Server(b"")
    url = s.url
    s.close()
    r = run_cli("prices", "update", "--url", url)
    assert r.returncode != 0 and r.stderr.startswith(f"agentmeter: could not fetch price data from {url}")
    assert "bundled data" in r.stderr and "Traceback" not in r.stderr
    assert not (get_paths().data_dir / "prices.json").exists()
    assert explain("claude-sonnet-4-5")["data"]["source"] == "bundled"


def test_doctor_shows_the_price_data_and_its_date(tmp_path):
    def prices_check() -> dict:
        r = run_cli("doctor", "--json")
        return next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "prices")

    c = prices_check()
    assert c["status"] == "ok" and c["detail"].startswith("bundled data of ")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(price_data()))
    assert run_cli("prices", "update", "--file", str(good)).returncode == 0
    date = explain("gpt-5")["data"]["date"]
    c = prices_check()
    assert c["status"] == "ok" and c["detail"].startswith(f"cache data of {date}") and str(good) in c["detail"]
    # A cache file damaged on disk: the bundled data is used and doctor says so.
    (get_paths().data_dir / "prices.json").write_text("{not json")
    c = prices_check()
    assert c["status"] == "warn" and "cached data not used" in c["detail"] and "prices update" in c["fix"]
