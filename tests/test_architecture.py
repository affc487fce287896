"""The layout's rules, read from the source: who may import whom, and how big a module may grow.

Dependency direction: ``api -> db, core, tasks.runtime`` (its sending half only), ``tasks -> db,
inference, core``, ``db -> core``, ``inference ->`` nothing of ours; nothing imports ``api``.
Imports inside functions and under ``TYPE_CHECKING`` count like any other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import ROOT

OURS = {"api", "core", "db", "tasks", "inference", "devstack", "training", "benchmarks", "tests"}
PRODUCT = ("api", "core", "db", "tasks", "inference", "devstack", "training")
# The API may send jobs; it never loads the broker's task registry, the worker or the scheduler.
# The dead letters (listing, replay, discard) are Redis and queue names only, like sending.
SENDING_HALF = (
    "tasks.runtime.queues",
    "tasks.runtime.factory",
    "tasks.runtime.dispatch",
    "tasks.runtime.deadletters",
)
ALLOWED: dict[str, tuple[str, ...]] = {
    "api": ("api", "core", "db", *SENDING_HALF),
    "tasks": ("tasks", "db", "inference", "core"),
    "db": ("db", "core"),
    "core": ("core",),
    "inference": ("inference",),
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules(*packages: str) -> Iterator[Path]:
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def _imported(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import of ours in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module.split(".")[: -node.level]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
            # ``from tasks import orders`` imports the module tasks.orders
            names = [f"{names[0]}.{alias.name}" for alias in node.names] if names[0] in OURS else names
        else:
            continue
        for name in names:
            if name.split(".")[0] in OURS:
                yield node.lineno, name


def _allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for path in _modules(*PRODUCT):
        rel = path.relative_to(root)
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        top = rel.parts[0]
        for line, name in _imported(ast.parse(path.read_text()), module):
            if top != "api" and _allowed(name, ("api",)):
                found.append(f"{rel}:{line} imports {name}: nothing imports api")
            elif top in ALLOWED and not _allowed(name, ALLOWED[top]):
                found.append(f"{rel}:{line} imports {name}: {top} may import only {', '.join(ALLOWED[top])}")
    return found


def test_imports_follow_the_dependency_direction() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("package", "source", "why"),
    [
        ("db/services", "from api.common import money\n", "nothing imports api"),
        ("inference", "import core.settings\n", "inference may import only"),
        ("api", "from tasks.runtime import broker\n", "api may import only"),
        ("api", "from tasks.orders import send_confirmation\n", "api may import only"),
        ("db", "from tasks.runtime.dispatch import BrokerDispatcher\n", "db may import only"),
        ("core", "def f():\n    from db.models import Order\n", "core may import only"),
    ],
)
def test_the_import_rule_fails_on_a_violation(package: str, source: str, why: str) -> None:
    probe = ROOT / package / "_import_rule_probe.py"
    probe.write_text(source)
    try:
        found = [v for v in violations() if "_import_rule_probe" in v]
    finally:
        probe.unlink()
    assert len(found) == 1, found
    assert why in found[0]


def test_modules_and_functions_stay_small() -> None:
    too_big = []
    for path in _modules(*PRODUCT):
        rel = path.relative_to(ROOT)
        if "migrations" in rel.parts:
            continue
        source = path.read_text()
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            too_big.append(f"{rel}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{rel}:{node.lineno} {node.name}() {length} lines")
    assert too_big == []
