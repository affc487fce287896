"""Limits of a product's free-form ``attributes`` (material, pattern, care ...).

Attributes are served on every product page, anonymous ones included, so their size is the
vendor's to choose only within these bounds: an object of at most ``MAX_KEYS`` short keys whose
values are text, numbers, booleans or null, or one level of list/object of those, and at most
``MAX_BYTES`` of JSON in all. The request schema declares the shape (and OpenAPI shows it);
:func:`attribute_problems` checks everything again for callers that do not go through it.
"""

from __future__ import annotations

from typing import Any

import msgspec

MAX_BYTES = 8 * 1024
MAX_DEPTH = 2  # the attributes object, and one list or object inside it
MAX_KEYS = 50  # per object, and items per list
MAX_KEY_LENGTH = 64
MAX_TEXT_LENGTH = 500


def _problems(value: Any, depth: int, path: str) -> list[str]:
    if isinstance(value, str):
        return [f"{path} is longer than {MAX_TEXT_LENGTH} characters"] if len(value) > MAX_TEXT_LENGTH else []
    if value is None or isinstance(value, bool | int | float):
        return []
    if not isinstance(value, dict | list):
        return [f"{path} is not a JSON value"]
    if depth >= MAX_DEPTH:
        return [f"{path} nests deeper than {MAX_DEPTH} levels"]
    if len(value) > MAX_KEYS:
        return [f"{path} has more than {MAX_KEYS} entries"]
    entries = value.items() if isinstance(value, dict) else ((f"[{i}]", item) for i, item in enumerate(value))
    return [p for key, item in entries for p in _entry_problems(value, key, item, depth, path)]


def _entry_problems(container: Any, key: Any, item: Any, depth: int, path: str) -> list[str]:
    if isinstance(container, list):
        return _problems(item, depth + 1, f"{path}{key}")
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        return [f"{path} has a key that is not 1 to {MAX_KEY_LENGTH} characters"]
    return _problems(item, depth + 1, f"{path}.{key}")


def attribute_problems(attributes: dict[str, Any]) -> list[str]:
    """What is wrong with ``attributes`` (empty when nothing is)."""
    problems = _problems(attributes, 0, "attributes")
    if not problems and len(msgspec.json.encode(attributes)) > MAX_BYTES:
        problems.append(f"attributes are larger than {MAX_BYTES} bytes of JSON")
    return problems
