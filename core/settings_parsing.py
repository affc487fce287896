"""Reading the settings' raw values: ``.env`` files, strings to field types, masking for logs.

Helpers of ``core.settings`` (which holds the one settings object and its loader), kept apart so
that module stays a readable list of settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args, get_origin

from dotenv import dotenv_values

from core.secret import Secret


def required(value: str | None, variable: str, example: str) -> str:
    """``value``, or RuntimeError saying how to set ``variable`` when it is empty."""
    if not value:
        raise RuntimeError(
            f"{variable} is not set. Start the stack with `just up` (embedded services) "
            f"or set {variable}={example}."
        )
    return value


def strip_credentials(url: str) -> str:
    """``url`` with its user and password masked, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables a ``.env`` file sets, read by python-dotenv (``export`` prefixes, single and
    double quotes, escapes in double quotes, ``# comments`` after a value). Values are taken
    literally (``${VAR}`` is not expanded: a secret may contain it); a key without ``=`` is skipped."""
    if not path.is_file():
        return {}
    return {
        k: v for k, v in dotenv_values(path, interpolate=False, encoding="utf-8").items() if v is not None
    }


def coerce(name: str, raw: str, annotation: Any) -> Any:
    """An environment string as msgspec should convert it to ``annotation``: a comma-separated
    list for list fields, None for an empty optional."""
    origin = get_origin(annotation)
    if origin is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    if raw == "" and type(None) in get_args(annotation):
        return None
    return raw


def dec_hook(type_: type, obj: Any) -> Any:
    """msgspec's hook for the types it does not build from strings itself."""
    if type_ is Secret and isinstance(obj, str):
        return Secret(obj)
    if type_ is Path and isinstance(obj, str):
        return Path(obj)
    raise TypeError(f"cannot convert {obj!r} to {type_}")  # msgspec reports it as a validation error
