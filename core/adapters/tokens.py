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
    # The user's token version when the token was issued; a request is refused once the user's
    # current version is higher (role changed, suspended, every session ended, password reset).
    ver: int = 0


class TokenSigner:
    """Signs with the first configured key and verifies with any of them (key rotation)."""

    def __init__(self, settings: Settings) -> None:
        keys = settings.jwt_keys()
        self._signing_kid, self._signing_key = keys[0]
        self._keys = dict(keys)
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = settings.access_token_ttl_seconds

    def issue(self, user_id: uuid.UUID, role: str, *, version: int = 0, now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "role": role,
            "ver": version,
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


class VerifiedTokens:
    """Access tokens this process has already verified (signature and claims), kept until they expire.

    Verifying an HS256 token (header, signature, claims) costs more CPU than the rest of a small
    request's authentication; a client sends the same token with every request for its 15
    minutes. What is cached is only that the token is genuine and what it says, which cannot
    change; whether it is still honoured is decided on every request by comparing its ``ver``,
    ``role`` and user with the user's current standing (``api/standing.py``), so a revoked token
    stays cached here but is refused there. Only valid tokens are cached; the cache is bounded
    and drops its oldest entries first.
    """

    def __init__(self, signer: TokenSigner, *, max_entries: int = 4096) -> None:
        self._signer = signer
        self._max_entries = max_entries
        self._verified: dict[str, AccessClaims] = {}

    def decode(self, token: str) -> AccessClaims:
        """As :meth:`TokenSigner.decode`. Raises InvalidToken."""
        claims = self._verified.get(token)
        if claims is not None:
            if claims.exp + _LEEWAY_SECONDS > time.time():
                return claims
            del self._verified[token]
        claims = self._signer.decode(token)
        if len(self._verified) >= self._max_entries:
            # Oldest first (dicts keep insertion order): a tenth at a time, to amortise the cost.
            for stale in list(self._verified)[: max(1, self._max_entries // 10)]:
                del self._verified[stale]
        self._verified[token] = claims
        return claims


def new_refresh_token() -> str:
    """An opaque, unguessable refresh token (256 bits)."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> bytes:
    """Refresh tokens are high-entropy, so a fast hash is enough to keep them unusable at rest."""
    return hashlib.sha256(token.encode()).digest()
