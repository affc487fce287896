"""Password hashing (Argon2id) and the password policy.

Hashing is CPU and memory heavy by design (19 MiB, a few tens of milliseconds), so callers in
async code run it in a worker thread through :class:`PasswordHasher`, which caps how many hashes
run at once per process. Hashes made with other parameters (argon2-cffi's RFC 9106 low-memory
profile before: 64 MiB, 3 passes, 4 lanes) still verify; a successful login rehashes them.
"""

from __future__ import annotations

import anyio
from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 128
# zxcvbn's scores: 0 too guessable … 4 very unguessable. 2 or more ("somewhat guessable")
# rejects every password on its bundled lists of common passwords and their simple variants.
MIN_STRENGTH = 2
_ZXCVBN_MAX = 72

# Argon2id at OWASP's recommended parameters (Password Storage Cheat Sheet: m=19 MiB, t=2, p=1).
# A login is one verify, so these set its cost; the RFC 9106 low-memory profile used before
# (64 MiB, t=3, p=4) made five times as many passes over three times the memory.
MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1
_argon2 = _Argon2(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)
# Verified when the account does not exist, so an unknown email costs as much as a wrong password.
# Written out rather than computed at import: one hash costs 19 MiB and tens of milliseconds,
# which every process importing this module (the API at start) would pay. It must carry the
# parameters of ``_argon2`` (a test checks that ``needs_rehash`` is false for it), or unknown
# emails would answer faster than wrong passwords.
_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$+iYrOZyR4rwbzBOADDFI4A$zN06VM9k7PgN0Z7nfrSaA+CuwHqAEfFKF+3NWSn6X2E"
)


def password_problems(password: str, *, user_inputs: list[str] | None = None) -> list[str]:
    """Why ``password`` is not acceptable (empty when it is).

    ``user_inputs`` (email, name) count as guessable words.
    """
    # Imported on first use: zxcvbn builds its dictionaries at import (~12 MB), which only the
    # few requests that set a password need.
    from zxcvbn import zxcvbn  # noqa: PLC0415

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
