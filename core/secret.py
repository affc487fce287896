"""Secret values: hidden from reprs, logs and tracebacks; random when nobody chose one."""

from __future__ import annotations

import secrets


class Secret:
    """A secret string whose repr and str hide its value; call :meth:`reveal` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def random_secret() -> Secret:
    """A secret nobody else knows: what an unset secret is, so nothing signs with a known value."""
    return Secret(secrets.token_urlsafe(48))
