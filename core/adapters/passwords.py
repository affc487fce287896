"""Password hashing (Argon2id) and the password policy.

Hashing is CPU and memory heavy by design (~64 MiB, tens of milliseconds), so callers in async
code run it in a worker thread through :class:`PasswordHasher`, which caps how many hashes run
at once per process.
"""

from __future__ import annotations

import anyio
from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

MIN_LENGTH = 10
MAX_LENGTH = 128
# zxcvbn's scores: 0 too guessable … 4 very unguessable. 2 or more ("somewhat guessable")
# rejects every password on its bundled lists of common passwords and their simple variants.
MIN_STRENGTH = 2
_ZXCVBN_MAX = 72

_argon2 = _Argon2()  # Argon2id with argon2-cffi's RFC 9106 low-memory parameters
# Verified when the account does not exist, so an unknown email costs as much as a wrong password.
_DUMMY_HASH = _argon2.hash("this-account-does-not-exist")


def password_problems(password: str, *, user_inputs: list[str] | None = None) -> list[str]:
    """Why ``password`` is not acceptable (empty when it is).

    ``user_inputs`` (email, name) count as guessable words.
    """
    if len(password) < MIN_LENGTH:
        return [f"Use at least {MIN_LENGTH} characters."]
    if len(password) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    result = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=[u for u in (user_inputs or []) if u])
    if result["score"] < MIN_STRENGTH:
        warning = result["feedback"].get("warning") or "This password is too common or too easy to guess."
        suggestions = " ".join(result["feedback"].get("suggestions") or [])
        return [f"{warning} {suggestions}".strip()]
    return []


def hash_password_sync(password: str) -> str:
    return _argon2.hash(password)


def verify_password_sync(password_hash: str | None, password: str) -> bool:
    try:
        return _argon2.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's."""
    try:
        return _argon2.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


class PasswordHasher:
    """Runs Argon2 off the event loop, at most ``concurrency`` at a time."""

    def __init__(self, concurrency: int = 2) -> None:
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(hash_password_sync, password, limiter=self._limiter)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Constant work whether or not ``password_hash`` exists (None means unknown account)."""
        return await anyio.to_thread.run_sync(
            verify_password_sync, password_hash, password, limiter=self._limiter
        )
