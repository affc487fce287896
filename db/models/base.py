"""Declarative base: UUIDv7 primary key plus ``created_at`` / ``updated_at`` audit columns."""

from __future__ import annotations

from advanced_alchemy.base import UUIDv7AuditBase, orm_registry

Base = UUIDv7AuditBase
metadata = orm_registry.metadata

__all__ = ["Base", "metadata"]
