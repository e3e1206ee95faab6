"""Claude Code transcripts: the pitfalls, each on a small crafted case."""

from __future__ import annotations

import pytest

from agentmeter.importers import import_logs
from agentmeter.ledger import open_ledger

from .crafted import claude_line, claude_user, write


@pytest.fixture
def ledger(tmp_path):
    lg = open_ledger(tmp_path / "ledger.db")
    yield lg
    lg.close()


def rows(ledger) -> list[dict]:
    return [dict(r) for r in ledger.conn.execute("SELECT * FROM requests ORDER BY started_at, import_key")]


def test_streamed_copies_keep_the_largest(ledger, tmp_path):
    f = write(
        tmp_path / "p" / "s.jsonl",
        [
            claude_user(),
            claude_line("msg_1", "req_1", out=1),
            claude_line("msg_1", "req_1", out=30),
            claude_line("msg_1", "req_1", out=58),
            claude_line("msg_1", "req_1", out=12),  # a later block copy that reports less must not win
        ],
    )
    s = import_logs("claude", ledger, [f.parent])
    [row] = rows(ledger)
    assert (s.responses, s.added, row["output_tokens"]) == (1, 1, 58)
    assert row["import_key"] == "claude:msg_1:req_1" and row["source"] == "claude-log"


def test_streamed_copy_split_across_batches_and_imports_is_replaced(ledger, tmp_path):
    f = write(tmp_path / "p" / "s.jsonl", [claude_line("msg_1", "req_1", out=5), claude_line("msg_2", "req_2")])
    import_logs("claude", ledger, [f])
    # Claude Code appends the message's later copy after the first import read the file.
    with f.open("a") as fh:
        fh.write(claude_line("msg_1", "req_1", out=80) + "\n")
    s = import_logs("claude", ledger, [f], batch=1)
    assert (s.added, s.updated) == (0, 1)
    by_key = {r["import_key"]: r for r in rows(ledger)}
    assert by_key["claude:msg_1:req_1"]["output_tokens"] == 80
    # the rollup was unfolded and refolded: it still equals the sum of the rows
    assert sum(r["output_tokens"] for r in ledger.rollup()) == 90
    assert sum(r["requests"] for r in ledger.rollup()) == 2


def test_missing_request_ids(ledger, tmp_path):
    f = write(
        tmp_path / "p" / "s.jsonl",
        [
            claude_line("msg_1", None, out=20),  # an older copy without its request id
            claude_line("msg_1", "req_1", out=20),
            claude_line("msg_2", None, out=7),  # only ever written without one
            claude_line(None, None, out=3, uuid="no-id-at-all"),
        ],
    )
    s = import_logs("claude", ledger, [f])
    assert sorted(r["import_key"] for r in rows(ledger)) == [
        "claude:msg_1:req_1",
        "claude:msg_2:",
        "claude:uuid:no-id-at-all",
    ]
    assert s.replayed == 1


def test_side_chain_replay_dropped_but_real_side_chain_counted(ledger, tmp_path):
    f = write(
        tmp_path / "p" / "s.jsonl",
        [
            claude_line("msg_parent", "req_a", out=40),
            # /btw and sub-agents can replay the parent's message under a new request id
            claude_line("msg_parent", "req_b", out=40, sidechain=True, ts="2026-01-01T00:00:05.000Z"),
            claude_line("msg_side", "req_c", out=9, sidechain=True, ts="2026-01-01T00:00:06.000Z"),
        ],
    )
    s = import_logs("claude", ledger, [f])
    assert sorted(r["import_key"] for r in rows(ledger)) == ["claude:msg_parent:req_a", "claude:msg_side:req_c"]
    assert s.replayed == 1


def test_side_chain_replay_in_a_later_import_is_dropped(ledger, tmp_path):
    import_logs("claude", ledger, [write(tmp_path / "a" / "s.jsonl", [claude_line("msg_p", "req_a")])])
    later = write(tmp_path / "b" / "s.jsonl", [claude_line("msg_p", "req_b", sidechain=True)])
    s = import_logs("claude", ledger, [later])
    assert (s.added, s.replayed) == (0, 1)


def test_sub_agent_files_included_and_attributed_to_the_parent_session(ledger, tmp_path):
    proj = tmp_path / "projects" / "-work-proj"
    write(
        proj / "sess-1.jsonl",
        [
            claude_line("msg_main", "req_1", ts="2026-01-01T00:00:00.000Z"),
            # Claude Code also logs the sub-agent's message in the parent file
            claude_line("msg_sub", "req_2", sidechain=True, ts="2026-01-01T00:00:03.000Z"),
        ],
    )
    write(
        proj / "sess-1" / "subagents" / "agent-a1b2.jsonl",
        [
            claude_line("msg_sub", "req_2", sidechain=True, ts="2026-01-01T00:00:03.000Z"),
            claude_line("msg_sub2", "req_3", sidechain=True, ts="2026-01-01T00:00:04.000Z"),
        ],
    )
    s = import_logs("claude", ledger, [tmp_path / "projects"])
    got = {r["import_key"]: r for r in rows(ledger)}
    assert set(got) == {"claude:msg_main:req_1", "claude:msg_sub:req_2", "claude:msg_sub2:req_3"}
    assert got["claude:msg_sub2:req_3"]["agent_id"] == "a1b2"
    assert len({r["session_id"] for r in got.values()}) == 1 and s.sessions_created == 1


def test_fork_session_replay_counts_once_under_the_original(ledger, tmp_path):
    proj = tmp_path / "projects" / "-work"
    write(proj / "orig.jsonl", [claude_line("msg_1", "req_1", session="orig", ts="2026-01-01T00:00:00.000Z")])
    # `--resume orig --fork-session` starts the new file with its own queue operations, then copies the
    # parent's lines under the new session id with their original timestamps (seen with 2.1.197)
    write(
        proj / "fork.jsonl",
        [
            '{"type":"mode","mode":"normal","sessionId":"fork"}',
            '{"type":"queue-operation","operation":"enqueue","timestamp":"2026-01-01T00:59:00.000Z","sessionId":"fork"}',
            claude_line("msg_1", "req_1", session="fork", ts="2026-01-01T00:00:00.000Z"),
            claude_line("msg_2", "req_2", session="fork", ts="2026-01-01T01:00:00.000Z"),
        ],
    )
    import_logs("claude", ledger, [tmp_path / "projects"])
    got = {r["import_key"]: r["agent_session_id"] for r in rows(ledger)}
    assert got == {"claude:msg_1:req_1": "orig", "claude:msg_2:req_2": "fork"}


def test_cache_write_split_repo_branch_cwd_and_session(ledger, tmp_path):
    f = write(
        tmp_path / "p" / "s.jsonl",
        [
            claude_line(
                "msg_1", "req_1", cw5=300, cw1=700, cache_read=5000, session="abc", cwd="/gone/repo", branch="feature/x"
            ),
            claude_line("msg_2", "req_2", session="abc", branch="HEAD", ts="2026-01-02T00:00:00.000Z"),
        ],
    )
    import_logs("claude", ledger, [f])
    r1, r2 = rows(ledger)
    assert (r1["cache_write_tokens"], r1["cache_write_5m_tokens"], r1["cache_write_1h_tokens"]) == (1000, 300, 700)
    # "HEAD" (outside a repository, detached) names no branch: the row keeps its session's
    assert r1["branch"] == "feature/x" and r2["branch"] == "feature/x"
    [s] = ledger.sessions()
    assert (s["agent"], s["agent_session_id"], s["cwd"], s["branch"]) == ("claude", "abc", "/gone/repo", "feature/x")
    assert s["started_at"] == r1["started_at"] and s["ended_at"] == r2["started_at"]
    assert s["requests"] == 2 and '"claude-log"' in s["tags"]


def test_repo_from_the_transcript_cwd(ledger, tmp_path):
    import subprocess

    repo = tmp_path / "checkout"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "trunk"], cwd=repo, check=True)
    subprocess.run(["git", "remote", "add", "origin", "git@github.com:Acme/Widget.git"], cwd=repo, check=True)
    f = write(tmp_path / "p" / "s.jsonl", [claude_line("msg_1", "req_1", cwd=str(repo), branch="trunk")])
    import_logs("claude", ledger, [f])
    [r] = rows(ledger)
    assert (r["repo"], r["branch"]) == ("github.com/acme/widget", "trunk")


def test_malformed_line_in_the_middle(ledger, tmp_path):
    good1, good2 = claude_line("msg_1", "req_1"), claude_line("msg_2", "req_2")
    f = write(tmp_path / "p" / "s.jsonl", [claude_user(), good1, good2[: len(good2) // 2], "\x00garbage", good2])
    s = import_logs("claude", ledger, [f])
    assert s.added == 2
    assert s.malformed == [(str(f), 1, 3)]  # only lines that could carry usage are parsed


def test_partial_last_line_is_read_next_time(ledger, tmp_path):
    f = tmp_path / "p" / "s.jsonl"
    f.parent.mkdir()
    line2 = claude_line("msg_2", "req_2")
    f.write_text(claude_line("msg_1", "req_1") + "\n" + line2[:40])  # Claude Code is mid-write
    assert import_logs("claude", ledger, [f]).added == 1
    with f.open("a") as fh:
        fh.write(line2[40:] + "\n")
    s = import_logs("claude", ledger, [f])
    assert (s.added, s.malformed) == (1, [])


def test_reimport_adds_nothing_and_reads_only_new_bytes(ledger, tmp_path):
    f = write(tmp_path / "p" / "s.jsonl", [claude_line(f"msg_{i}", f"req_{i}") for i in range(5)])
    assert import_logs("claude", ledger, [f]).added == 5
    again = import_logs("claude", ledger, [f])
    assert (again.added, again.files_unchanged, again.bytes_read) == (0, 1, 0)
    with f.open("a") as fh:
        fh.write(claude_line("msg_9", "req_9") + "\n")
    more = import_logs("claude", ledger, [f])
    assert more.added == 1 and more.bytes_read == len(claude_line("msg_9", "req_9")) + 1
    assert len(rows(ledger)) == 6


def test_claude_config_dir_variants(ledger, tmp_path, monkeypatch):
    a, b = tmp_path / "cfg-a", tmp_path / "cfg-b"
    write(a / "projects" / "x" / "s.jsonl", [claude_line("msg_a", "req_a")])
    write(b / "projects" / "y" / "t.jsonl", [claude_line("msg_b", "req_b")])
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{a},{b}")
    assert import_logs("claude", ledger).added == 2


def test_default_locations_under_home(ledger, tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path / ".claude" / "projects" / "x" / "s.jsonl", [claude_line("msg_a", "req_a")])
    write(tmp_path / ".config" / "claude" / "projects" / "x" / "s.jsonl", [claude_line("msg_b", "req_b")])
    assert import_logs("claude", ledger).added == 2


def test_synthetic_and_zero_usage_messages_are_not_billed(ledger, tmp_path):
    f = write(
        tmp_path / "p" / "s.jsonl",
        [claude_line("msg_1", "req_1", model="<synthetic>"), claude_line("msg_2", "req_2", inp=0, out=0)],
    )
    assert import_logs("claude", ledger, [f]).responses == 0


def test_unknown_model_is_unpriced_not_free(ledger, tmp_path):
    f = write(tmp_path / "p" / "s.jsonl", [claude_line("msg_1", "req_1", model="claude-zeta-9")])
    s = import_logs("claude", ledger, [f])
    [r] = rows(ledger)
    assert r["unpriced"] == 1 and r["cost_usd"] > 0 and "claude-zeta-9" in (r["reason"] or "")
    assert s.unpriced_models == {"anthropic:claude-zeta-9"}


def test_dry_run_writes_nothing(tmp_path):
    f = write(
        tmp_path / "p" / "s.jsonl",
        [claude_line("msg_1", "req_1"), claude_line("msg_1", "req_1", out=99), claude_line("msg_2", "req_2")],
    )
    path = tmp_path / "ledger.db"
    open_ledger(path).close()
    ro = open_ledger(path, readonly=True)
    s = import_logs("claude", ro, [f], dry_run=True, batch=1)
    # batch=1: the larger copy of msg_1 arrives after the first was "written": still one response
    assert (s.responses, s.added, s.updated, s.sessions_created) == (2, 2, 0, 1)
    assert s.added_usage.output_tokens == 99 + 10
    assert ro.conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
    assert ro.conn.execute("SELECT COUNT(*) FROM import_files").fetchone()[0] == 0


def test_files_in_path_order_do_not_matter(tmp_path):
    # Same content, opposite listing order: the same rows.
    results = []
    for name_a, name_b in (("a", "b"), ("b", "a")):
        root = tmp_path / f"r{name_a}"
        write(root / f"{name_a}.jsonl", [claude_line("msg_1", "req_1", session="first", ts="2026-01-01T00:00:00Z")])
        write(
            root / f"{name_b}.jsonl",
            [
                claude_line("msg_1", "req_1", session="second", ts="2026-01-01T00:00:00Z"),
                claude_line("msg_2", "req_2", session="second", ts="2026-01-01T00:10:00Z"),
            ],
        )
        lg = open_ledger(tmp_path / f"{name_a}.db")
        import_logs("claude", lg, [root])
        results.append(sorted((r["import_key"], r["output_tokens"]) for r in rows(lg)))
        lg.close()
    assert results[0] == results[1]


def test_only_jsonl_files(ledger, tmp_path):
    write(tmp_path / "p" / "notes.txt", [claude_line("msg_1", "req_1")])
    assert import_logs("claude", ledger, [tmp_path / "p"]).responses == 0


def test_progress_gets_the_bytes_to_read(ledger, tmp_path):
    import contextlib

    f = write(tmp_path / "p" / "s.jsonl", [claude_line(f"msg_{i}", f"req_{i}") for i in range(50)])
    seen: dict = {"advanced": 0}

    @contextlib.contextmanager
    def bar(total):
        seen["total"] = total

        def advance(n):
            seen["advanced"] += n

        yield advance

    import_logs("claude", ledger, [f], progress=bar)
    assert seen == {"total": f.stat().st_size, "advanced": f.stat().st_size}
