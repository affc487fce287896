"""Outbox operations: write durable jobs with the business change, mark them sent, sweep the rest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import msgspec
from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.jobs import Dispatcher, Job
from core.logging import get_logger
from db.models.outbox import OutboxMessage

log = get_logger(__name__)


def add_to_outbox(session: AsyncSession, jobs: Sequence[Job]) -> None:
    """Stage outbox rows for ``jobs`` in ``session`` (they commit or roll back with it)."""
    for job in jobs:
        session.add(
            OutboxMessage(
                job_id=job.job_id,
                task_name=job.task_name,
                args=msgspec.to_builtins(list(job.args)),
                kwargs=msgspec.to_builtins(job.kwargs),
                labels=dict(job.labels),
            )
        )


async def mark_dispatched(session: AsyncSession, job_ids: Sequence[UUID]) -> None:
    if not job_ids:
        return
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.job_id.in_(job_ids), OutboxMessage.dispatched_at.is_(None))
        .values(dispatched_at=datetime.now(UTC))
    )


def job_from_row(row: OutboxMessage) -> Job:
    return Job(
        task_name=row.task_name,
        args=tuple(row.args),
        kwargs=dict(row.kwargs),
        durable=True,
        job_id=row.job_id,
        labels=dict(row.labels),
    )


class OutboxBacklog(msgspec.Struct, frozen=True):
    """Outbox rows not marked sent yet, and how long the oldest of them has waited."""

    unsent: int
    oldest_age_seconds: float


async def outbox_backlog(session: AsyncSession) -> OutboxBacklog:
    """Rows the after-commit send has not marked yet; normally a few, each for milliseconds. A
    growing count or age means sends fail (the broker is unreachable) or the sweep is not running.
    Reads the sweep's partial index only."""
    count, age = (
        await session.execute(
            select(
                func.count(),
                func.extract("epoch", func.now() - func.min(OutboxMessage.created_at)),
            ).where(OutboxMessage.dispatched_at.is_(None))
        )
    ).one()
    return OutboxBacklog(unsent=int(count), oldest_age_seconds=max(0.0, float(age or 0.0)))


class SweepResult(msgspec.Struct, frozen=True):
    sent: int
    failed: int
    purged: int


async def sweep_outbox(
    session_maker: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    *,
    min_age: timedelta,
    batch_size: int = 200,
    keep_dispatched: timedelta = timedelta(days=7),
) -> SweepResult:
    """Send outbox rows older than ``min_age`` that were never marked dispatched.

    Rows are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent sweepers share the work
    instead of sending a row twice. A row whose send fails keeps its place with the error noted
    and is tried again on the next sweep. Dispatched rows older than ``keep_dispatched`` are
    deleted. Downstream tasks are idempotent, so a row sent twice (crash between send and mark)
    is harmless.
    """
    sent = failed = 0
    now = datetime.now(UTC)
    async with session_maker() as session, session.begin():
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.dispatched_at.is_(None), OutboxMessage.created_at < now - min_age)
                .order_by(OutboxMessage.created_at)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            row.attempts += 1
            try:
                await dispatcher.send(job_from_row(row))
            except Exception as exc:  # any broker failure leaves the row for the next sweep
                failed += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                log.warning("outbox send failed", task_name=row.task_name, job_id=str(row.job_id))
            else:
                sent += 1
                row.dispatched_at = datetime.now(UTC)
        deleted = cast(
            "CursorResult[Any]",
            await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.dispatched_at.is_not(None),
                    OutboxMessage.dispatched_at < now - keep_dispatched,
                )
            ),
        )
        purged = deleted.rowcount
    if sent or failed:
        log.info("outbox swept", sent=sent, failed=failed, purged=purged)
    return SweepResult(sent=sent, failed=failed, purged=purged or 0)
