"""The command line sits on top: nothing imports `agentmeter.__main__`, only `__main__` and the CLI itself import
`agentmeter.cli`, and no import cycle (counting imports inside functions, which run later but still tie two
modules together) passes through the CLI or the completion generator (hooks/completions). Each CLI module also
imports on its own in a fresh interpreter (an import-order cycle fails there, not in a run that imported all)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "agentmeter"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def imports_of(name: str, path: Path) -> set[str]:
    """agentmeter modules that `name` imports anywhere in its file (`from . import x`: x when it is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def cycles_through(targets: set[str]) -> list[list[str]]:
    """One shortest cycle back to each target that has one."""
    found = []
    for start in sorted(targets):
        paths, seen = [[start]], {start}
        while paths:
            nxt = []
            for p in paths:
                for m in sorted(GRAPH[p[-1]]):
                    if m == start:
                        found.append([*p, start])
                        break
                    if m not in seen:
                        seen.add(m)
                        nxt.append([*p, m])
                else:
                    continue
                break
            else:
                paths = nxt
                continue
            break
    return found


def is_cli(name: str) -> bool:
    return name == "agentmeter.cli" or name.startswith("agentmeter.cli.")


def test_the_graph_sees_the_imports_it_must():
    assert "agentmeter.cli.fast" in GRAPH["agentmeter.__main__"]
    assert "agentmeter.cli.args" in GRAPH["agentmeter.cli.fast"]
    assert "agentmeter.hooks.completions" in GRAPH["agentmeter.cli.shell"]


def test_nothing_imports_main_and_only_the_cli_imports_the_cli():
    assert [m for m, deps in GRAPH.items() if "agentmeter.__main__" in deps] == []
    assert (
        sorted(
            m
            for m, deps in GRAPH.items()
            if not is_cli(m) and m != "agentmeter.__main__" and any(is_cli(d) for d in deps)
        )
        == []
    )


def test_no_cycle_through_the_cli_or_the_completions():
    targets = {m for m in MODULES if is_cli(m)} | {"agentmeter.__main__", "agentmeter.hooks.completions"}
    assert cycles_through(targets) == []


@pytest.mark.parametrize(
    "name", sorted(m for m in MODULES if is_cli(m) or m in ("agentmeter.__main__", "agentmeter.hooks.completions"))
)
def test_imports_alone_in_a_fresh_interpreter(name):
    r = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
