"""Regenerate the module tree at the end of docs/architecture.md from each module's docstring.

python scripts/gen_architecture.py           # rewrite it
python scripts/gen_architecture.py --check   # exit 1 if it is stale (tests/test_architecture.py does this)
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src" / "agentmeter"
DOC = REPO / "docs" / "architecture.md"
MARK = "## Modules\n\n```\n"


def _first(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    return text[:110] + ("…" if len(text) > 110 else "")


def tree() -> str:
    out: list[str] = []
    for f in sorted(SRC.glob("*.py")):
        if f.name != "__init__.py":
            out.append(f"{f.name:<30}{_first(f)}")
    for d in sorted(p for p in SRC.iterdir() if (p / "__init__.py").exists()):
        out.append("")
        out.append(f"{d.name + '/':<30}{_first(d / '__init__.py')}")
        for f in sorted(d.glob("*.py")):
            if f.name != "__init__.py":
                out.append(f"  {f.name:<28}{_first(f)}")
    return "\n".join(out) + "\n"


def expected() -> str:
    text = DOC.read_text(encoding="utf-8")
    head = text[: text.index(MARK) + len(MARK)]
    return head + tree() + "```\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report whether it is stale")
    args = ap.parse_args()
    want = expected()
    if args.check:
        if DOC.read_text(encoding="utf-8") != want:
            sys.stderr.write("stale: docs/architecture.md (run: python scripts/gen_architecture.py)\n")
            return 1
        return 0
    DOC.write_text(want, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
