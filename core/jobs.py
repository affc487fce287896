"""Enqueue after commit: a per-transaction buffer of background jobs.

Domain code calls :func:`defer` while it works inside a unit of work. Nothing reaches the broker
then; the unit of work (``db/uow.py``) flushes the buffer only after its transaction commits and
drops it on rollback, so a worker never sees a job for data that does not exist.

Jobs that must never be lost are marked ``durable``: the unit of work also writes them to the
outbox table in the same transaction, and a periodic sweeper re-sends any row whose after-commit
send did not happen (process crash, Redis down).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, Protocol
from uuid import UUID

import msgspec

from core.context import REQUEST_ID_LABEL, get_request_id
from core.ids import new_id


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A task invocation: a task name plus JSON-primitive arguments."""

    task_name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    # Also written to the outbox in the same transaction; re-sent by the sweeper if lost.
    durable: bool = False
    # Stable id so a job re-sent by the sweeper can be recognised downstream.
    job_id: UUID = msgspec.field(default_factory=new_id)
    labels: dict[str, str] = msgspec.field(default_factory=dict)


class Dispatcher(Protocol):
    """Sends jobs to the broker. Implemented by ``tasks.runtime.dispatch.BrokerDispatcher``."""

    async def send(self, job: Job) -> None: ...


AfterCommit = Callable[[], Awaitable[None]]


class JobBuffer:
    """Jobs recorded during one transaction, in order; the page versions it changes
    (``core.page_versions``), bumped like the jobs are sent: after the commit; and notices to give
    once it commits.

    A notice (:func:`after_commit`) is for telling other processes about the change right away
    (revoked access tokens); it is best effort, so nothing may depend on it alone.
    """

    __slots__ = ("jobs", "notices", "versions")

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.versions: set[str] = set()
        self.notices: list[AfterCommit] = []

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def drain(self) -> list[Job]:
        jobs, self.jobs = self.jobs, []
        return jobs

    def drain_versions(self) -> list[str]:
        versions, self.versions = sorted(self.versions), set()
        return versions

    def drain_notices(self) -> list[AfterCommit]:
        notices, self.notices = self.notices, []
        return notices

    def clear(self) -> None:
        self.jobs.clear()
        self.versions.clear()
        self.notices.clear()


class NoActiveUnitOfWork(RuntimeError):
    """A job was deferred outside a unit of work, so there is no commit to wait for."""


_buffer: ContextVar[JobBuffer | None] = ContextVar("job_buffer", default=None)


def current_buffer() -> JobBuffer:
    buffer = _buffer.get()
    if buffer is None:
        raise NoActiveUnitOfWork("defer() needs an open unit of work (request or task session)")
    return buffer


def open_buffer() -> JobBuffer | None:
    """The current buffer, or None outside a unit of work."""
    return _buffer.get()


@contextlib.contextmanager
def job_buffer() -> Iterator[JobBuffer]:
    """Open a fresh buffer for the current context (one per request or task run)."""
    buffer = JobBuffer()
    token = _buffer.set(buffer)
    try:
        yield buffer
    finally:
        _buffer.reset(token)


def defer(task_name: str, *args: Any, durable: bool = False, **kwargs: Any) -> Job:
    """Record a job to send once the current transaction commits.

    Arguments must be JSON primitives (ids as strings); the task reloads what it needs.

    Raises:
        NoActiveUnitOfWork: called outside a request/task unit of work.
    """
    request_id = get_request_id()
    labels = {REQUEST_ID_LABEL: request_id} if request_id else {}
    job = Job(task_name=task_name, args=args, kwargs=kwargs, durable=durable, labels=labels)
    current_buffer().add(job)
    return job


def after_commit(notice: AfterCommit) -> None:
    """Call ``notice()`` once the current transaction has committed (never after a rollback).

    Best effort: an exception it raises is logged, not raised, since the data is committed.

    Raises:
        NoActiveUnitOfWork: called outside a request/task unit of work.
    """
    current_buffer().notices.append(notice)
