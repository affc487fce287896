"""Every job the product sends names a task a worker has: one list of names, checked both ways."""

from __future__ import annotations

import ast
import importlib

from core import task_names
from tests.support.stack import ROOT

PRODUCT = ("api", "core", "db", "tasks", "devstack")
NAMES = {name: value for name, value in vars(task_names).items() if name.isupper() and isinstance(value, str)}


def _sent_names() -> list[tuple[str, str]]:
    """(where, first argument) of every ``defer(...)`` call in the product's source."""
    calls = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if called != "defer" or not node.args:
                    continue
                first = node.args[0]
                if isinstance(first, ast.Name):
                    argument = first.id
                elif isinstance(first, ast.Attribute):
                    argument = first.attr
                else:
                    argument = ast.unparse(first)
                calls.append((f"{path.relative_to(ROOT)}:{node.lineno}", argument))
    return calls


def test_every_deferred_task_is_named_by_a_constant() -> None:
    calls = _sent_names()
    assert len(calls) >= 10  # the scan found the call sites
    assert [(where, arg) for where, arg in calls if arg not in NAMES] == []


def test_every_task_name_is_registered_by_a_task_module() -> None:
    from tasks.runtime.broker import broker  # building it reads settings
    from tasks.runtime.worker import task_modules

    for module in task_modules():
        importlib.import_module(module)
    missing = {name: value for name, value in NAMES.items() if broker.find_task(value) is None}
    assert missing == {}
    assert len(NAMES) == len(set(NAMES.values()))
