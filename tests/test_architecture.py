"""The layers of docs/architecture.md, enforced: a package imports only packages below it (or beside it, where
the table says so), and SQL — the `sqlite3` module — appears only in ledger/ and collector/.

An upward import that is known and on its way out is listed in EXCEPTIONS with the reason; the test also fails
when a listed exception no longer exists, so the list only shrinks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

# Lowest first. A package may import any package of a lower layer and the packages of its own layer.
LAYERS: list[set[str]] = [
    {"core"},  # value types, errors, the clock, parsing: no I/O
    {"home"},  # where files live, config.toml, secrets, who/where (attribution)
    {"pricing"},  # list prices and tiers
    {"providers"},  # sans-io wire meters per provider
    {"budget", "plan"},  # the pure policy: windows, stages, forecasts, plan windows
    {"ledger"},  # the local SQLite ledger: the only SQL on the client
    {"agents"},  # the agent registry: how each agent is pointed at the proxy
    {"importers", "sync", "collector"},  # log import, team sync client, the team collector
    {"proxy"},  # the sidecar: route → preflight → relay → metering → alerts
    {"commands", "launch", "hooks"},  # use cases returning payloads; `run`; shell/Claude Code hooks
    {"render"},  # the only printers
    {"cli", "__main__"},  # argument parsing, typer and the fast paths
]
LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
TEST_SUPPORT = {"testing"}  # the fake provider and scripted agent: imported by tests and the demo only

# (importing module, imported package) → why it is still allowed.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("agentmeter.commands.demo", "testing"): "the demo's simulated provider is the test fake, by design",
    ("agentmeter.commands.demo", "render"): "the demo narrates as it goes (an entry point that prints)",
    ("agentmeter.commands.report_cmd", "render"): "report's entry point shared with the fast path",
    ("agentmeter.launch.run", "render"): "`run`'s entry point prints its banner and notes",
}
SQL_PACKAGES = {"ledger", "collector"}
# Modules that still open or query the ledger themselves → why; the list only shrinks (moving into ledger/).
SQL_EXCEPTIONS: dict[str, str] = {}


def _modules():
    for path in sorted((SRC / "agentmeter").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        name = ".".join(parts)
        yield name, (name if is_pkg else name.rsplit(".", 1)[0]), ast.parse(path.read_text(encoding="utf-8"))


def _imports(name: str, package: str, tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                full = ".".join(base + ([node.module] if node.module else []))
            else:
                full = node.module or ""
            if node.module is None or full == "agentmeter":
                yield from (f"{full}.{a.name}" for a in node.names)
            else:
                yield full
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "agentmeter" and len(parts) > 1 else None


def _edges():
    for name, package, tree in _modules():
        for target in _imports(name, package, tree):
            yield name, target


def test_every_package_has_a_layer():
    packages = {p.name for p in (SRC / "agentmeter").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in (SRC / "agentmeter").glob("*.py")} - {"__init__"}
    assert modules <= {"__main__"}, f"loose modules at the top: {sorted(modules - {'__main__'})} — give each a package"
    assert packages - TEST_SUPPORT <= set(LAYER_OF), f"packages without a layer: {sorted(packages - set(LAYER_OF))}"


def test_no_layer_imports_upwards():
    used, wrong = set(), []
    for name, target in _edges():
        src, dst = _top(name), _top(target)
        if src is None or dst is None or src == dst or target in ("agentmeter.__version__",):
            continue
        if dst in TEST_SUPPORT and src not in TEST_SUPPORT:
            ok = False
        elif src in TEST_SUPPORT:
            ok = True
        else:
            ok = LAYER_OF[dst] <= LAYER_OF[src]
        if not ok:
            if (name, dst) in EXCEPTIONS:
                used.add((name, dst))
            else:
                wrong.append(
                    f"{name} imports {target} ({src} is layer {LAYER_OF.get(src)}, {dst} is "
                    f"{LAYER_OF.get(dst, 'test support')})"
                )
    assert not wrong, "upward imports (see docs/architecture.md):\n" + "\n".join(sorted(set(wrong)))
    assert not set(EXCEPTIONS) - used, f"exceptions no longer needed, remove them: {sorted(set(EXCEPTIONS) - used)}"


def test_sql_lives_in_ledger_and_collector_only():
    found = {name for name, target in _edges() if target == "sqlite3" and _top(name) not in SQL_PACKAGES}
    new = sorted(found - set(SQL_EXCEPTIONS))
    assert not new, f"sqlite3 used outside ledger/ and collector/: {new} — put the SQL in ledger/"
    gone = sorted(set(SQL_EXCEPTIONS) - found)
    assert not gone, f"no longer use sqlite3, remove from SQL_EXCEPTIONS: {gone}"


@pytest.mark.parametrize("layer", range(len(LAYERS)))
def test_the_architecture_document_lists_every_layer(layer):
    doc = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for pkg in LAYERS[layer]:
        assert f"`{pkg}/`" in doc or f"`{pkg}`" in doc, f"docs/architecture.md does not describe {pkg}"


def test_the_module_tree_in_the_document_is_current():
    r = subprocess.run(
        [sys.executable, str(SRC.parent / "scripts" / "gen_architecture.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
