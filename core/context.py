"""Per-request / per-task context carried in contextvars (request id)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
# Task label that carries the id of the request that caused the task.
REQUEST_ID_LABEL = "request_id"

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# An incoming id is echoed only when it is short and made of safe characters, so it cannot
# inject into logs or headers.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(candidate: str | None) -> str:
    """Return ``candidate`` when it is a well-formed request id, else a fresh one."""
    if candidate and _VALID_REQUEST_ID.match(candidate):
        return candidate
    return new_request_id()


def get_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    """Set the current request id; returns a token for :func:`reset_request_id`."""
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]  # the token came from set_request_id
