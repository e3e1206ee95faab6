"""Attribution reads HEAD from the repository's files (no git process on `run`'s path); every answer must be
git's own, on real repositories made by the real git: a branch, a subdirectory, a repository before its first
commit, a detached HEAD, packed refs, a linked worktree, and the cases left to git itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agentmeter.home import attribution

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command (apt-get install git)")


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "HOME": str(cwd),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


def gits_answer(cwd: Path) -> tuple[str | None, str | None]:
    branch = subprocess.run(["git", "symbolic-ref", "--short", "-q", "HEAD"], cwd=cwd, capture_output=True, text=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD^{commit}"], cwd=cwd, capture_output=True, text=True
    )
    return (branch.stdout.strip() or None), (commit.stdout.strip() or None)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "feature/x")
    return r


def commit(r: Path, name: str = "a") -> str:
    (r / name).write_text(name)
    git(r, "add", name)
    git(r, "commit", "-q", "-m", name)
    return git(r, "rev-parse", "HEAD")


def check(cwd: Path, want: tuple[str | None, str | None]) -> None:
    assert gits_answer(cwd) == want  # the test's own premise: this is what git says
    assert attribution.read_head(str(cwd)) == want
    assert attribution.detect(str(cwd)).branch == want[0]
    assert attribution.head_commit(str(cwd)) == want[1]


def test_before_the_first_commit(repo):
    check(repo, ("feature/x", None))


def test_a_branch_and_a_subdirectory(repo):
    sha = commit(repo)
    (repo / "deep" / "er").mkdir(parents=True)
    check(repo, ("feature/x", sha))
    check(repo / "deep" / "er", ("feature/x", sha))


def test_detached_head(repo):
    first = commit(repo)
    commit(repo, "b")
    git(repo, "checkout", "-q", first)
    check(repo, (None, first))


def test_packed_refs(repo):
    sha = commit(repo)
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "feature" / "x").exists()
    check(repo, ("feature/x", sha))


def test_a_linked_worktree_on_another_branch(repo, tmp_path):
    commit(repo)
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "other", str(wt))
    sha = commit(wt, "c")
    check(wt, ("other", sha))
    check(repo, ("feature/x", git(repo, "rev-parse", "HEAD")))


def test_what_the_files_do_not_settle_is_left_to_git(repo, tmp_path, monkeypatch):
    sha = commit(repo)
    assert attribution.read_head(str(tmp_path / "nowhere")) is None  # not a repository: git decides
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    assert attribution.read_head(str(repo)) is None
    monkeypatch.delenv("GIT_DIR")
    (repo / ".git" / "refs" / "heads" / "feature" / "x").write_text("ref: refs/heads/elsewhere\n")
    assert attribution.read_head(str(repo)) is None
    (repo / ".git" / "refs" / "heads" / "feature" / "x").write_text(sha + "\n")
    check(repo, ("feature/x", sha))
