"""Access tokens (JWT, HS256, key id for rotation) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Any

import jwt
import msgspec

from core.settings import Settings

ALGORITHM = "HS256"  # pinned: a token naming any other algorithm (or "none") is rejected
_LEEWAY_SECONDS = 10


class InvalidToken(Exception):
    """The access token is malformed, forged, expired or meant for someone else."""


class AccessClaims(msgspec.Struct, frozen=True):
    sub: uuid.UUID
    role: str
    jti: str
    iat: int
    exp: int


class TokenSigner:
    """Signs with the first configured key and verifies with any of them (key rotation)."""

    def __init__(self, settings: Settings) -> None:
        keys = settings.jwt_keys()
        self._signing_kid, self._signing_key = keys[0]
        self._keys = dict(keys)
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = settings.access_token_ttl_seconds

    def issue(self, user_id: uuid.UUID, role: str, *, now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "role": role,
            "jti": uuid.uuid4().hex,
            "iat": issued,
            "exp": issued + self.ttl,
            "iss": self.issuer,
            "aud": self.audience,
        }
        return jwt.encode(payload, self._signing_key, algorithm=ALGORITHM, headers={"kid": self._signing_kid})

    def decode(self, token: str) -> AccessClaims:
        """Verify signature, algorithm, expiry, issuer and audience.

        Raises:
            InvalidToken: for any problem; the reason is not told to the client.
        """
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid")))
            if key is None or header.get("alg") != ALGORITHM:
                raise InvalidToken("unknown key or algorithm")
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["sub", "role", "jti", "iat", "exp", "iss", "aud"]},
            )
            return msgspec.convert(payload, AccessClaims, strict=False)
        except (jwt.PyJWTError, msgspec.ValidationError, ValueError) as exc:
            raise InvalidToken(str(exc)) from None


def new_refresh_token() -> str:
    """An opaque, unguessable refresh token (256 bits)."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> bytes:
    """Refresh tokens are high-entropy, so a fast hash is enough to keep them unusable at rest."""
    return hashlib.sha256(token.encode()).digest()
