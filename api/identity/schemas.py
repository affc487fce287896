"""Request and response bodies of the identity endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

Email = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=254,
        pattern=r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$",
        examples=["ada@example.com"],
    ),
]
NewPassword = Annotated[
    str, Meta(min_length=10, max_length=128, description="10 to 128 characters, not a common one")
]
AnyPassword = Annotated[str, Meta(min_length=1, max_length=128)]
Code = Annotated[str, Meta(pattern=r"^[0-9]{6}$", description="The 6-digit code from the email")]
FullName = Annotated[str, Meta(min_length=1, max_length=120, pattern=r"\S")]
Phone = Annotated[str, Meta(pattern=r"^\+?[0-9][0-9 ()\-]{6,19}$", examples=["+234 803 555 0101"])]
OpaqueToken = Annotated[str, Meta(min_length=16, max_length=200)]


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: NewPassword
    full_name: FullName
    role: Literal["client", "vendor"] = "client"


class VerifyCodeRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    code: Code


class EmailRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: AnyPassword


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: OpaqueToken


class ResetPasswordRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    code: Code
    new_password: NewPassword


class ProfileUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields sent are changed; ``phone: null`` removes the phone number."""

    full_name: FullName | msgspec.UnsetType = msgspec.UNSET
    phone: Phone | msgspec.UnsetType | None = msgspec.UNSET


class User(msgspec.Struct):
    id: UUID
    email: str
    full_name: str
    role: Literal["client", "vendor", "staff"]
    is_verified: bool
    created_at: datetime
    phone: str | None = None
    # Suspended by staff: no login, no token honoured.
    status: Literal["active", "suspended"] = "active"


class TokenPair(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  # the OAuth token type, not a secret


class Accepted(msgspec.Struct):
    status: Literal["accepted"]
    detail: str


class Session(msgspec.Struct):
    id: UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None


class SessionList(msgspec.Struct):
    items: list[Session]
