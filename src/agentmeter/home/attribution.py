"""Who, where and on what: developer, repo (normalised remote, worktrees merged), branch."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Attribution:
    developer: str | None
    repo: str | None
    branch: str | None
    cwd: str


def _git(cwd: str, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=3, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def normalise_remote(url: str) -> str:
    """git@github.com:org/repo.git, https://user@github.com/org/repo → github.com/org/repo."""
    u = url.strip()
    u = re.sub(r"^[a-z+]+://", "", u)
    u = re.sub(r"^[^@/]+@", "", u)  # user@ (credentials never leave this function)
    u = re.sub(r"^([^/:]+):(?!\d+/)", r"\1/", u)  # scp-like host:path
    u = re.sub(r":\d+/", "/", u)
    u = re.sub(r"\.git/?$", "", u).rstrip("/")
    return u.lower() if u.count("/") >= 1 else u


def detect(cwd: str | None = None, developer: str | None = None) -> Attribution:
    cwd = str(Path(cwd or Path.cwd()).resolve())
    # One git call for both settings (each git process costs a few milliseconds of `run`'s start-up).
    settings = dict(
        line.split(" ", 1)
        for line in (_git(cwd, "config", "--get-regexp", r"^(user\.email|remote\.origin\.url)$") or "").splitlines()
        if " " in line
    )
    dev = developer or settings.get("user.email")
    remote = settings.get("remote.origin.url")
    repo = normalise_remote(remote) if remote else None
    if repo is None:
        # No remote: name the repo by its main worktree's directory, so worktrees count as one repo.
        common = _git(cwd, "rev-parse", "--path-format=absolute", "--git-common-dir")
        if common:
            repo = Path(common).parent.name if Path(common).name == ".git" else Path(common).name
    head = read_head(cwd)
    if head is not None:
        branch = head[0]
    else:  # symbolic-ref also names the branch of a repo with no commits yet; detached HEAD gives None.
        branch = _git(cwd, "symbolic-ref", "--short", "-q", "HEAD")
    return Attribution(developer=dev, repo=repo, branch=branch, cwd=cwd)


def head_commit(cwd: str | None) -> str | None:
    """The commit HEAD names in the repository at `cwd` (None outside a repository or before a first commit)."""
    if not cwd or not Path(cwd).is_dir():
        return None
    head = read_head(cwd)
    if head is not None:
        return head[1]
    return _git(cwd, "rev-parse", "--verify", "-q", "HEAD^{commit}")


_HEX = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_BRANCH_REF = re.compile(r"^ref: refs/heads/[^\x00-\x20\x7f~^:?*\[\\]{1,250}$")


def _small(path: Path) -> str:
    """A one-line git file (HEAD, a loose ref, .git, commondir), read at most 4 KiB: a repository is input."""
    with open(path, encoding="utf-8") as f:
        return f.read(4096).strip()


def read_head(cwd: str) -> tuple[str | None, str | None] | None:
    """(branch, commit) of HEAD read from the repository's files, without starting git (each git process is a
    few milliseconds of every `run`): branch None when detached, commit None before the first commit. None when
    the files do not settle it — no `.git` found, GIT_DIR and friends set, reftable refs, a symbolic ref outside
    refs/heads — and the caller asks git itself."""
    import os

    if any(os.environ.get(v) for v in ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES")):
        return None
    try:
        gitdir = _find_gitdir(Path(cwd))
        if gitdir is None:
            return None
        common = gitdir
        if (gitdir / "commondir").is_file():  # a linked worktree: its refs live in the main repository
            common = (gitdir / _small(gitdir / "commondir")).resolve()
        if (common / "reftable").exists():
            return None
        head = _small(gitdir / "HEAD")
        if _HEX.match(head):
            return None, head  # detached
        if not _BRANCH_REF.match(head):  # anything unusual (or hostile) in a cloned repository: git decides
            return None
        ref = head[5:]
        return ref[len("refs/heads/") :], _resolve_ref(common, ref)
    except (OSError, UnicodeDecodeError, LookupError):
        return None


def _find_gitdir(start: Path) -> Path | None:
    for d in (start, *start.parents):
        dotgit = d / ".git"
        if dotgit.is_dir():
            return dotgit
        if dotgit.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = _small(dotgit)
            if not text.startswith("gitdir: "):
                return None
            return (d / text[8:]).resolve()
    return None


def _resolve_ref(common: Path, ref: str) -> str | None:
    loose = common / ref
    if loose.is_file():
        sha = _small(loose)
        if not _HEX.match(sha):
            raise LookupError(ref)  # a symbolic ref, or something git itself must read
        return sha
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _HEX.match(sha):
                return sha
    return None  # an unborn branch (no commit yet)


def commit_range(spec: str, cwd: str | None = None) -> list[str]:
    """The commits of a git range (`A..B`: reachable from B and not from A) or one commit, as full ids, read
    from the repository at `cwd` (default: here)."""
    from ..core.errors import UsageError

    where = str(Path(cwd or Path.cwd()))
    spec = spec.strip()
    if not spec or spec.startswith("-"):
        raise UsageError(f"bad commit range {spec!r}", "e.g. --commits main..feature or --commits v1.2..HEAD")
    if ".." in spec:
        out = _git(where, "rev-list", spec, "--")
        if out is None and _git(where, "rev-parse", "--verify", "-q", spec.split("..")[0] or "HEAD") is None:
            raise UsageError(
                f"{spec!r} is not a commit range in {where}",
                "run it inside the repository, with branch, tag or commit names it knows",
            )
        return out.split() if out else []
    one = _git(where, "rev-parse", "--verify", "-q", spec + "^{commit}")
    if one is None:
        raise UsageError(f"{spec!r} is not a commit in {where}", "run it inside the repository, or give A..B")
    return [one]
