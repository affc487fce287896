"""What every API domain shares: list parameters, money, and presenters of shared shapes."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.params import QueryParameter
from msgspec import Meta

from api.identity import schemas as identity_schemas
from db.models import User

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size (1-100)")]
Cursor = Annotated[
    str | None, QueryParameter(max_length=300, description="`next_cursor` of the previous page")
]
Currency = Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code")]


class Money(msgspec.Struct, frozen=True):
    """An amount in integer minor units (kobo, cents) with its currency; zero allowed (free shipping)."""

    amount: Annotated[int, Meta(ge=0, description="Integer minor units (kobo, cents)")]
    currency: Currency


class SignedMoney(msgspec.Struct, frozen=True):
    """An amount that may be negative (money taken back), in minor units, with its currency."""

    amount: Annotated[int, Meta(description="Integer minor units; negative when taken back")]
    currency: Currency


def money(amount: int, currency: str) -> Money:
    return Money(amount=amount, currency=currency)


def user_out(user: User) -> identity_schemas.User:
    return identity_schemas.User(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        is_verified=user.is_verified,
        created_at=user.created_at,
        phone=user.phone,
        status="active" if user.suspended_at is None else "suspended",
    )
