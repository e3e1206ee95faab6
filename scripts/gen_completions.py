"""Regenerate the checked-in completion files (completions/) from the CLI's command tree. The shell hooks
themselves have one copy only: src/agentmeter/hooks/agentmeter.{bash,zsh,fish} (`agentmeter shell-init SHELL`
prints them).

    python scripts/gen_completions.py           # write them
    python scripts/gen_completions.py --check   # exit 1 and name the stale files (tests/test_shell.py does this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def expected() -> dict[Path, str]:
    import typer.main

    from agentmeter.cli.main import app
    from agentmeter.cli.shell import cli_tree
    from agentmeter.hooks.completions import scripts

    files = {REPO / "completions" / name: text for name, text in scripts(cli_tree(typer.main.get_command(app))).items()}
    return files


def stale(files: dict[Path, str]) -> list[Path]:
    return [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report stale files")
    args = ap.parse_args()
    files = expected()
    out_of_date = stale(files)
    if args.check:
        for p in out_of_date:
            sys.stderr.write(f"stale: {p.relative_to(REPO)} (run: python scripts/gen_completions.py)\n")
        return 1 if out_of_date else 0
    for p in out_of_date:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[p], encoding="utf-8")
        sys.stderr.write(f"wrote {p.relative_to(REPO)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
