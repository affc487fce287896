"""Six-digit one-time codes: issued by the mail task, checked by the API.

Codes are stored as keyed hashes (HMAC with the secret key), expire after ``OTP_TTL_SECONDS``,
burn after ``OTP_MAX_ATTEMPTS`` wrong tries, and a new code invalidates the older ones of the
same purpose. The code of a job is derived from the job id, so a redelivered job re-sends the
same code instead of making a new one.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.models import OneTimeCode, User
from db.models.one_time_code import CodePurpose
from db.services.identity import audit
from db.services.identity.audit import AuditLog
from db.services.identity.errors import InvalidCode

CODE_DIGITS = 6


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"one-time-codes:" + settings.secret_key.reveal().encode()).digest()


def code_for_job(settings: Settings, job_id: UUID) -> str:
    digest = hmac.new(_key(settings), b"code:" + job_id.bytes, hashlib.sha256).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def hash_code(settings: Settings, user_id: UUID, purpose: str, code: str) -> bytes:
    message = f"{purpose}:{user_id}:{code}".encode()
    return hmac.new(_key(settings), message, hashlib.sha256).digest()


async def issue_code(
    session: AsyncSession, settings: Settings, user: User, purpose: CodePurpose, job_id: UUID
) -> tuple[str, OneTimeCode]:
    """The code of ``job_id`` for ``user`` (created once; older live codes are invalidated)."""
    code = code_for_job(settings, job_id)
    existing = await session.scalar(select(OneTimeCode).where(OneTimeCode.job_id == job_id))
    if existing is not None:
        return code, existing
    now = datetime.now(UTC)
    await session.execute(
        update(OneTimeCode)
        .where(
            OneTimeCode.user_id == user.id,
            OneTimeCode.purpose == purpose,
            OneTimeCode.consumed_at.is_(None),
            OneTimeCode.invalidated_at.is_(None),
        )
        .values(invalidated_at=now)
    )
    row = OneTimeCode(
        user_id=user.id,
        purpose=purpose,
        code_hash=hash_code(settings, user.id, purpose, code),
        expires_at=now + timedelta(seconds=settings.otp_ttl_seconds),
        job_id=job_id,
    )
    session.add(row)
    await session.flush()
    return code, row


async def consume_code(
    session: AsyncSession,
    settings: Settings,
    audit_log: AuditLog,
    user: User | None,
    purpose: CodePurpose,
    code: str,
) -> None:
    """Accept ``code`` for ``user`` once, or count a wrong try.

    Raises:
        InvalidCode: unknown user, no live code, expired, wrong (counted; the last allowed wrong
            try burns the code). The same error whatever the reason.
    """
    if user is None:
        raise InvalidCode("The code is invalid or has expired.")
    row = await session.scalar(
        select(OneTimeCode)
        .where(
            OneTimeCode.user_id == user.id,
            OneTimeCode.purpose == purpose,
            OneTimeCode.consumed_at.is_(None),
            OneTimeCode.invalidated_at.is_(None),
        )
        .order_by(OneTimeCode.id.desc())
        .limit(1)
        # Two guesses in parallel must both be counted.
        .with_for_update()
    )
    now = datetime.now(UTC)
    if row is None or row.expires_at <= now:
        raise InvalidCode("The code is invalid or has expired.")
    if hmac.compare_digest(row.code_hash, hash_code(settings, user.id, purpose, code)):
        row.consumed_at = now
        return
    row.attempts += 1
    if row.attempts >= settings.otp_max_attempts:
        row.invalidated_at = now
        audit_log.record(audit.CODE_BURNED, user_id=user.id, purpose=purpose)
    raise InvalidCode("The code is invalid or has expired.")
