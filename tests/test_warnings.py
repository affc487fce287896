"""Deprecations from our own code fail the run (pyproject's pytest ``filterwarnings``), so code
written against an API on its way out is fixed when it is written, not when the API is gone."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from tests.support.stack import ROOT

OURS = ("api", "core", "db", "tasks", "inference", "devstack", "training")
WARN = compile("import warnings; warnings.warn('going away', DeprecationWarning)", "<m>", "exec")
PYTEST = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
FILTERS: list[str] = PYTEST["filterwarnings"]


@pytest.mark.parametrize("module", [f"{package}.some_module" for package in OURS] + ["core"])
def test_a_deprecation_raised_in_our_code_is_an_error(module: str) -> None:
    with pytest.raises(DeprecationWarning, match="going away"):
        exec(WARN, {"__name__": module})  # what warnings.warn sees as the calling module


@pytest.mark.parametrize("module", ["sqlalchemy.orm", "apispec", "corelib.x", "dbutils"])
def test_a_deprecation_raised_in_a_library_is_only_reported(module: str) -> None:
    with pytest.warns(DeprecationWarning, match="going away"):
        exec(WARN, {"__name__": module})


IMPORT_ALL = """
import importlib, pathlib, sys, warnings
warnings.simplefilter("ignore")
for category in (DeprecationWarning, PendingDeprecationWarning):
    warnings.filterwarnings("error", category=category, module=r"(%s)(\\.|$)")
failed = []
for package in %r:
    for path in sorted(pathlib.Path(package).rglob("*.py")):
        if {"build", "migrations"} & set(path.parts):
            continue
        name = ".".join(path.with_suffix("").parts).removesuffix(".__init__")
        try:
            importlib.import_module(name)
        except (DeprecationWarning, PendingDeprecationWarning) as exc:
            failed.append(f"{name}: {exc}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_importing_every_module_of_ours_raises_no_deprecation() -> None:
    """Import-time deprecations of modules no test imports would slip past the pytest filter."""
    code = IMPORT_ALL % ("|".join(OURS), OURS)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_the_filters_name_the_libraries_they_silence() -> None:
    """Library warnings are silenced one by one (by message or by their own class), never a whole
    category at once."""
    for entry in FILTERS:
        action, message, category = [*entry.split(":"), "", ""][:3]
        assert action in ("ignore", "error"), entry
        if action == "ignore":
            assert message or "." in category, f"{entry}: silences a whole category"
