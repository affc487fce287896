"""The staff's dead-letter endpoints: listing in pages, replaying onto the job's queue, discarding;
staff only, and a replayed or discarded id is 404 (problem+json) from then on."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from tasks.runtime.deadletters import DEAD_LETTER_STREAM, park
from tasks.runtime.queues import stream_name
from tests.support.identity import bearer, login, make_user

pytestmark = pytest.mark.anyio

API = "/api/v1/staff/jobs/dead-letters"


def _message(n: int) -> bytes:
    # analytics: a queue the session's shared worker does not serve, so a replayed one stays put.
    return msgspec.json.encode(
        {"task_id": f"job-{n}", "task_name": "analytics.test.x", "labels": {}, "args": [n]}
    )


@pytest.fixture
async def parked(redis: Redis) -> list[str]:
    await redis.delete(DEAD_LETTER_STREAM)
    return [
        await park(redis, queue="analytics", data=_message(n), reason="failed", deliveries=3)
        for n in range(3)
    ]


async def _headers(client: httpx.AsyncClient, session: AsyncSession, role: str) -> dict[str, str]:
    user = await make_user(session, role=role)
    return bearer(await login(client, user.email))


async def test_staff_list_parked_jobs_in_pages(
    client: httpx.AsyncClient, session: AsyncSession, parked: list[str]
) -> None:
    staff = await _headers(client, session, "staff")
    first = await client.get(API, params={"limit": 2}, headers=staff)
    assert first.status_code == 200, first.text
    body: dict[str, Any] = first.json()
    assert [item["id"] for item in body["items"]] == parked[:2]
    assert body["total"] == 3
    assert body["items"][0] | {"parked_at": 0} == {
        "id": parked[0],
        "queue": "analytics",
        "task_name": "analytics.test.x",
        "task_id": "job-0",
        "reason": "failed",
        "deliveries": 3,
        "consumers": [],
        "errors": [],
        "sent_at": None,
        "parked_at": 0,
    }
    second = await client.get(API, params={"limit": 2, "cursor": body["next_cursor"]}, headers=staff)
    assert [item["id"] for item in second.json()["items"]] == parked[2:]
    assert second.json()["next_cursor"] is None


async def test_replay_sends_the_job_again_once_and_discard_deletes_it(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis, parked: list[str]
) -> None:
    staff = await _headers(client, session, "staff")
    stream = stream_name("analytics")
    before = await redis.xlen(stream)
    replayed = await client.post(f"{API}/{parked[0]}/replay", headers=staff)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["task_id"] == "job-0"
    assert replayed.json()["queue"] == "analytics"
    sent: Any = await redis.xrange(
        stream, min=replayed.json()["message_id"], max=replayed.json()["message_id"]
    )
    fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in sent[0][1].items()}
    assert msgspec.json.decode(fields["data"]) == msgspec.json.decode(_message(0))
    assert await redis.xlen(stream) == before + 1

    again = await client.post(f"{API}/{parked[0]}/replay", headers=staff)
    assert again.status_code == 404
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "replayed" in again.json()["detail"]
    assert await redis.xlen(stream) == before + 1  # not sent twice

    assert (await client.delete(f"{API}/{parked[1]}", headers=staff)).status_code == 204
    assert (await client.delete(f"{API}/{parked[1]}", headers=staff)).status_code == 404
    listed = (await client.get(API, headers=staff)).json()
    assert [item["id"] for item in listed["items"]] == [parked[2]]
    assert (await client.post(f"{API}/not-an-id/replay", headers=staff)).status_code in (400, 422)


async def test_only_staff_see_or_touch_dead_letters(
    client: httpx.AsyncClient, session: AsyncSession, redis: Redis, parked: list[str]
) -> None:
    for role in ("client", "vendor"):
        headers = await _headers(client, session, role)
        assert (await client.get(API, headers=headers)).status_code == 403
        assert (await client.post(f"{API}/{parked[0]}/replay", headers=headers)).status_code == 403
        assert (await client.delete(f"{API}/{parked[0]}", headers=headers)).status_code == 403
    assert (await client.get(API)).status_code == 401
    assert (await client.delete(f"{API}/{parked[0]}")).status_code == 401
    assert await redis.xlen(DEAD_LETTER_STREAM) == 3
