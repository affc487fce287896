"""Dead letters for staff: jobs parked after killing their workers or failing their last attempt
(``tasks.runtime.deadletters``), listed oldest first, replayed onto their queue or discarded.

``just dead-letters`` does the same from a shell, through the same module.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter

from api.auth import requires_role
from api.common import Cursor, Limit
from api.resources import AppResources
from api.staff import schemas
from tasks.runtime.deadletters import (
    DeadLetter,
    count_dead_letters,
    discard,
    get_dead_letter,
    list_dead_letters,
    replay,
)

DeadLetterId = Annotated[
    str,
    PathParameter(
        pattern=r"^\d{1,20}-\d{1,20}$", description="The dead letter's id, as listed (`1733580000000-0`)"
    ),
]


def _out(letter: DeadLetter) -> schemas.DeadLetter:
    return schemas.DeadLetter(
        id=letter.id,
        queue=letter.queue,
        task_name=letter.task_name,
        task_id=letter.task_id,
        reason=letter.reason,
        deliveries=letter.deliveries,
        consumers=letter.consumers,
        errors=[
            schemas.DeadLetterError(
                at=float(e.get("at", 0)), attempt=int(e.get("attempt", 0)), error=str(e.get("error", ""))
            )
            for e in letter.errors
        ],
        sent_at=letter.sent_at,
        parked_at=letter.parked_at,
    )


class StaffJobsController(Controller):
    path = "/staff/jobs/dead-letters"
    tags = ["staff"]
    guards = [requires_role("staff")]

    @get(
        "/",
        summary="Jobs parked in the dead letters, oldest first",
        description="A job is parked when its message was delivered `TASK_DEAD_LETTER_AFTER_DELIVERIES` "
        "times without being acknowledged (`reason` `deliveries`: each worker that ran it died) or "
        "when its last attempt failed (`failed`, with the error of each attempt).",
    )
    async def list_dead_letters(
        self, resources: NamedDependency[AppResources], limit: Limit = 20, cursor: Cursor = None
    ) -> schemas.DeadLetterList:
        page = await list_dead_letters(resources.redis, after=cursor, limit=limit)
        return schemas.DeadLetterList(
            items=[_out(letter) for letter in page.items],
            next_cursor=page.next_cursor,
            total=await count_dead_letters(resources.redis),
        )

    @post(
        "/{dead_letter_id:str}/replay",
        status_code=202,
        summary="Send a parked job to its queue again",
        description="The job's message is sent again as it was first sent (a fresh delivery count, "
        "its first attempt) and leaves the dead letters. 404 if it was replayed or discarded already.",
    )
    async def replay_dead_letter(
        self, dead_letter_id: DeadLetterId, resources: NamedDependency[AppResources]
    ) -> schemas.Replayed:
        letter = await get_dead_letter(resources.redis, dead_letter_id)
        message_id = await replay(
            resources.redis, dead_letter_id, maxlen=resources.settings.task_stream_maxlen
        )
        return schemas.Replayed(queue=letter.queue, task_id=letter.task_id, message_id=message_id)

    @delete("/{dead_letter_id:str}", summary="Discard a parked job for good")
    async def discard_dead_letter(
        self, dead_letter_id: DeadLetterId, resources: NamedDependency[AppResources]
    ) -> None:
        await discard(resources.redis, dead_letter_id)
