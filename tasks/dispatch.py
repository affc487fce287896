"""Send jobs to the broker by task name (no task code is imported to do so)."""

from __future__ import annotations

from typing import Any

from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker

from core.context import REQUEST_ID_LABEL, get_request_id
from core.jobs import Job
from tasks.queues import queue_of, stream_name


class BrokerDispatcher:
    """:class:`core.jobs.Dispatcher` over a taskiq broker."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker

    async def send(self, job: Job) -> None:
        labels: dict[str, Any] = {
            "queue_name": stream_name(queue_of(job.task_name)),
            "job_id": str(job.job_id),
            **job.labels,
        }
        if REQUEST_ID_LABEL not in labels and (request_id := get_request_id()):
            labels[REQUEST_ID_LABEL] = request_id
        kicker: AsyncKicker[Any, Any] = AsyncKicker(
            task_name=job.task_name, broker=self.broker, labels=labels
        ).with_task_id(str(job.job_id))
        await kicker.kiq(*job.args, **job.kwargs)
