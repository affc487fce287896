"""Identifiers: UUIDv7 everywhere (time-ordered, index friendly)."""

from __future__ import annotations

import uuid

import uuid_utils.compat as _uuid


def new_id() -> uuid.UUID:
    """A new UUIDv7 as a standard-library :class:`uuid.UUID`."""
    return _uuid.uuid7()
