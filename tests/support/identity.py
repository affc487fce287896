"""Test data for identity: users straight into the database, and HTTP helpers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.passwords import hash_password_sync
from core.ids import new_id
from core.settings import Settings
from db.models import User
from db.models.one_time_code import CodePurpose
from db.services.identity.codes import issue_code

PASSWORD = "velvet-Runway-2026!"
_HASH_CACHE: dict[str, str] = {}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


async def make_user(
    session: AsyncSession,
    *,
    role: str = "client",
    verified: bool = True,
    email: str | None = None,
    password: str = PASSWORD,
    full_name: str = "Ada Obi",
) -> User:
    """A user row (Argon2 hashes are cached per password to keep tests fast)."""
    if password not in _HASH_CACHE:
        _HASH_CACHE[password] = hash_password_sync(password)
    user = User(
        email=email or unique_email(role),
        password_hash=_HASH_CACHE[password],
        full_name=full_name,
        role=role,
        is_verified=verified,
    )
    session.add(user)
    await session.commit()
    return user


async def new_code(session: AsyncSession, settings: Settings, user: User, purpose: CodePurpose) -> str:
    """Issue a code as the mail task would, and return it."""
    code, _ = await issue_code(session, settings, user, purpose, new_id())
    await session.commit()
    return code


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}
