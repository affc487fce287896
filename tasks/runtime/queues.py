"""Queue names and the task-name convention that routes a task to its queue.

A task's name starts with its queue (``"emails.identity.send_code"``), so anyone can send a job
by name (the API does, without importing task code) and the route cannot drift from the task.
"""

from __future__ import annotations

from typing import Literal, get_args

Queue = Literal["inference", "critical", "emails", "analytics"]
QUEUES: tuple[Queue, ...] = get_args(Queue)
STREAM_PREFIX = "fashionistar:queue:"


class UnknownQueue(ValueError):
    pass


def stream_name(queue: str) -> str:
    """The Redis stream that holds ``queue``'s messages."""
    return STREAM_PREFIX + queue


def queue_of(task_name: str) -> Queue:
    """The queue a task name routes to.

    Raises:
        UnknownQueue: the name does not start with a known queue.
    """
    prefix = task_name.split(".", 1)[0]
    for queue in QUEUES:
        if queue == prefix:
            return queue
    raise UnknownQueue(f"task name {task_name!r} must start with one of {QUEUES}")


def parse_queues(value: str | None) -> tuple[Queue, ...]:
    """Parse ``"inference,critical"`` / ``"all"`` / empty into queue names.

    Raises:
        UnknownQueue: a name is not a queue.
    """
    if not value or value.strip() == "all":
        return QUEUES
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [q for q in wanted if q not in QUEUES]
    if unknown:
        raise UnknownQueue(f"unknown queue(s) {unknown}; known: {QUEUES}")
    return tuple(q for q in QUEUES if q in wanted)
