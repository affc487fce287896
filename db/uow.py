"""Unit of work: one transaction, then the jobs it recorded.

Used by the API (one per request, through a generator dependency) and by tasks (one per run).
On success the session commits first, then buffered jobs go to the broker and after-commit
notices run; durable jobs were
written to the outbox inside the same transaction and are marked sent afterwards. On any error
the transaction rolls back and the buffered jobs are dropped. Services never commit; this is
the only commit point.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import DomainError
from core.jobs import AfterCommit, Dispatcher, Job, JobBuffer, job_buffer
from core.logging import get_logger
from core.page_versions import PageVersions
from db.outbox import add_to_outbox, mark_dispatched

log = get_logger(__name__)


@contextlib.asynccontextmanager
async def unit_of_work(
    session_maker: async_sessionmaker[AsyncSession],
    dispatcher: Dispatcher,
    *,
    buffer: JobBuffer | None = None,
    versions: PageVersions | None = None,
    written_position: Callable[[], Awaitable[int | None]] | None = None,
) -> AsyncIterator[AsyncSession]:
    """Open a session in a transaction; commit on success, roll back on error, then bump the
    page versions the work touched (``versions``; dropped on rollback) and send jobs.

    ``buffer`` is the job buffer of the surrounding request when it already has one; otherwise a
    fresh buffer is opened for the block.

    ``written_position`` (``Database.written_position``): the primary's WAL position after the
    commit, stored with the bumped versions when a read replica is configured (None without one).

    A :class:`DomainError` with ``preserve_changes`` commits the work done before it (and sends
    its jobs) and is then re-raised.

    Raises:
        Whatever the block raises (after rollback), or the commit's database error.
    """
    with contextlib.ExitStack() as stack:
        if buffer is None:
            buffer = stack.enter_context(job_buffer())
        async with session_maker() as session:
            error: DomainError | None = None
            try:
                yield session
            except DomainError as exc:
                if not exc.preserve_changes:
                    buffer.clear()
                    await session.rollback()
                    raise
                # The failure itself is worth keeping (an audit entry, an attempt counter):
                # commit what was done, then let the error reach the caller.
                error = exc
            except BaseException:
                buffer.clear()
                await session.rollback()
                raise
            try:
                durable = [job for job in buffer.jobs if job.durable]
                if durable:
                    add_to_outbox(session, durable)
                await session.commit()
            except BaseException:
                buffer.clear()
                await session.rollback()
                raise
        await _bump_versions(buffer, versions, written_position)
        await flush_jobs(session_maker, dispatcher, buffer.drain())
        await give_notices(buffer.drain_notices())
        if error is not None:
            raise error


async def _bump_versions(
    buffer: JobBuffer,
    versions: PageVersions | None,
    written_position: Callable[[], Awaitable[int | None]] | None,
) -> None:
    """Bump the page versions the committed work touched. After the commit, never before: a
    reader that sees the new version must find the new data, or it would cache the old page under
    the new version."""
    touched = buffer.drain_versions()
    if versions is not None:
        position = await written_position() if written_position is not None and touched else None
        await versions.bump(touched, position)


async def give_notices(notices: list[AfterCommit]) -> None:
    """Run the after-commit notices; one that fails is logged and the others still run."""
    for notice in notices:
        try:
            await notice()
        except Exception:
            log.warning("after-commit notice failed", exc_info=True)


async def flush_jobs(
    session_maker: async_sessionmaker[AsyncSession], dispatcher: Dispatcher, jobs: list[Job]
) -> None:
    """Send committed jobs. A failed send never fails the caller: the data is already committed.

    Durable jobs that fail stay in the outbox for the sweeper; a non-durable job that fails is
    logged as lost (that is the contract of non-durable jobs).
    """
    if not jobs:
        return
    sent_durable = []
    for job in jobs:
        try:
            await dispatcher.send(job)
        except Exception:
            if job.durable:
                log.warning("job send failed; left to the outbox sweeper", task_name=job.task_name)
            else:
                log.exception("job send failed; job lost", task_name=job.task_name)
            continue
        if job.durable:
            sent_durable.append(job.job_id)
    if sent_durable:
        try:
            async with session_maker() as session, session.begin():
                await mark_dispatched(session, sent_durable)
        except Exception:
            # The sweeper will send these again; tasks are idempotent.
            log.warning("could not mark outbox rows dispatched", count=len(sent_durable), exc_info=True)
