"""Dead letters: jobs that are parked instead of being delivered again, and their replay.

A job lands here in two ways:

- ``deliveries``: its message was delivered ``TASK_DEAD_LETTER_AFTER_DELIVERIES`` times and never
  acknowledged: each worker that took it died while running it (a crash, a kill for memory).
  Delivering it again would kill the next worker, so the broker parks it instead of claiming it
  (``tasks.runtime.streams``).
- ``failed``: the task raised on its last attempt (``tasks.runtime.retry``); parked so it can be
  run again once the cause is fixed. Errors no retry can fix (a ``DomainError``, a
  ``PermanentTaskError``) are outcomes, not dead letters.

All queues share one stream, ``fashionistar:dead-letters``; each entry records its queue, the
message exactly as it was sent (replaying sends it again, with a fresh delivery count), and
what is known of its history: deliveries, the consumers that took it and did not finish, the
errors of its failed attempts (kept per task id for ``HISTORY_TTL_SECONDS``) and when it was
sent and parked. Parking writes the entry and acknowledges the source message in one
transaction, so a job is either waiting on its queue or parked, never both or neither.

Used by the worker (parking), the staff API and ``just dead-letters`` (listing, replay, discard):
only Redis and the queue names, no task code.
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
from redis.asyncio import Redis

from core.errors import NotFound
from tasks.runtime.queues import STREAM_PREFIX, stream_name

DEAD_LETTER_STREAM = "fashionistar:dead-letters"
ERRORS_PREFIX = "fashionistar:task-errors:"
DELIVERIES_PREFIX = "fashionistar:deliveries:"
# Long enough for any job's way to its dead letter (redeliveries, an hour of outage retries).
HISTORY_TTL_SECONDS = 24 * 3600
HISTORY_MAX = 10
REASONS = ("deliveries", "failed")

# Atomic replay: only the caller whose XDEL removed the entry sends the message again.
_REPLAY = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[2])
"""


class DeadLetterNotFound(NotFound):
    title = "Dead letter not found"
    code = "dead_letter_not_found"


class DeadLetter(msgspec.Struct, frozen=True):
    """A parked job and what is known of why."""

    id: str
    queue: str
    task_name: str
    task_id: str
    reason: str
    deliveries: int
    consumers: list[str]
    errors: list[dict[str, Any]]
    sent_at: float | None
    parked_at: float


class DeadLetterPage(msgspec.Struct, frozen=True):
    items: list[DeadLetter]
    next_cursor: str | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _task_of(data: bytes) -> tuple[str, str]:
    """(task name, task id) of a taskiq message; empty strings for a message that is not one."""
    try:
        decoded = json.loads(data)
        return str(decoded.get("task_name", "")), str(decoded.get("task_id", ""))
    except (ValueError, AttributeError):
        return "", ""


def _sent_at(msg_id: str) -> float | None:
    millis, _, _ = msg_id.partition("-")
    return int(millis) / 1000 if millis.isdigit() else None


async def record_error(redis: Redis, task_id: str, attempt: int, error: BaseException) -> None:
    """Keep the error of a failed attempt of ``task_id`` (the last ``HISTORY_MAX``) for its entry."""
    key = ERRORS_PREFIX + task_id
    entry = json.dumps({"at": round(time.time(), 3), "attempt": attempt, "error": repr(error)[:500]})
    pipe = redis.pipeline(transaction=False)
    pipe.rpush(key, entry)
    pipe.ltrim(key, -HISTORY_MAX, -1)
    pipe.expire(key, HISTORY_TTL_SECONDS)
    await pipe.execute()


async def record_delivery(redis: Redis, stream: str, msg_id: str, consumer: str) -> None:
    """Note that ``consumer`` held ``msg_id`` and did not finish it (it is being redelivered)."""
    key = f"{DELIVERIES_PREFIX}{stream}:{msg_id}"
    pipe = redis.pipeline(transaction=False)
    pipe.rpush(key, json.dumps({"at": round(time.time(), 3), "consumer": consumer}))
    pipe.ltrim(key, -HISTORY_MAX, -1)
    pipe.expire(key, HISTORY_TTL_SECONDS)
    await pipe.execute()


async def park(
    redis: Redis,
    *,
    queue: str,
    data: bytes,
    reason: str,
    deliveries: int,
    source: tuple[str, str, str] | None = None,
    consumer: str | None = None,
) -> str:
    """Park a job; returns the dead letter's id.

    ``source`` is (stream, consumer group, message id) of the stream entry to acknowledge in the
    same transaction (None when the job is not pending: a failed last attempt is acknowledged by
    the worker as usual). ``consumer`` is the last one that held it.
    """
    task_name, task_id = _task_of(data)
    history_keys = [ERRORS_PREFIX + task_id] if task_id else []
    if source is not None:
        history_keys.append(f"{DELIVERIES_PREFIX}{source[0]}:{source[2]}")
    pipe = redis.pipeline(transaction=False)
    for key in history_keys:
        pipe.lrange(key, 0, -1)
    lists = await pipe.execute()
    errors = [json.loads(e) for e in lists[0]] if task_id else []
    held = [json.loads(d)["consumer"] for d in lists[-1]] if source is not None else []
    if consumer and (not held or held[-1] != consumer):
        held.append(consumer)
    fields: dict[Any, Any] = {
        "data": data,
        "queue": queue,
        "task_name": task_name,
        "task_id": task_id,
        "reason": reason,
        "deliveries": deliveries,
        "consumers": json.dumps(held[-HISTORY_MAX:]),
        "errors": json.dumps(errors),
        "sent_at": "" if source is None else str(_sent_at(source[2]) or ""),
        "parked_at": f"{time.time():.3f}",
    }
    tx = redis.pipeline(transaction=True)
    tx.xadd(DEAD_LETTER_STREAM, fields)
    if source is not None:
        tx.xack(source[0], source[1], source[2])
    if history_keys:
        tx.delete(*history_keys)
    replies = await tx.execute()
    return _text(replies[0])


def _dead_letter(msg_id: Any, fields: dict[Any, Any]) -> DeadLetter:
    f = {_text(k): v for k, v in fields.items()}
    sent = _text(f.get("sent_at", b""))
    return DeadLetter(
        id=_text(msg_id),
        queue=_text(f.get("queue", b"")),
        task_name=_text(f.get("task_name", b"")),
        task_id=_text(f.get("task_id", b"")),
        reason=_text(f.get("reason", b"")),
        deliveries=int(_text(f.get("deliveries", b"0")) or 0),
        consumers=json.loads(f.get("consumers", b"[]")),
        errors=json.loads(f.get("errors", b"[]")),
        sent_at=float(sent) if sent else None,
        parked_at=float(_text(f.get("parked_at", b"0"))),
    )


def _valid_id(dead_letter_id: str) -> bool:
    millis, sep, seq = dead_letter_id.partition("-")
    return bool(sep) and millis.isdigit() and seq.isdigit() and len(dead_letter_id) <= 41


async def list_dead_letters(redis: Redis, *, after: str | None = None, limit: int = 50) -> DeadLetterPage:
    """Parked jobs, oldest first; ``after`` is the ``next_cursor`` of the previous page."""
    start = f"({after}" if after and _valid_id(after) else "-"
    # redis-py types stream replies loosely (optional everywhere); entries are (id, fields) pairs.
    entries: list[Any] = await redis.xrange(DEAD_LETTER_STREAM, min=start, max="+", count=limit + 1) or []
    items = [_dead_letter(msg_id, fields) for msg_id, fields in entries[:limit]]
    return DeadLetterPage(items=items, next_cursor=items[-1].id if len(entries) > limit else None)


async def count_dead_letters(redis: Redis) -> int:
    return int(await redis.xlen(DEAD_LETTER_STREAM))


async def get_dead_letter(redis: Redis, dead_letter_id: str) -> DeadLetter:
    """Raises DeadLetterNotFound."""
    return _dead_letter(*await _entry(redis, dead_letter_id))


async def _entry(redis: Redis, dead_letter_id: str) -> tuple[Any, dict[Any, Any]]:
    entries = (
        await redis.xrange(DEAD_LETTER_STREAM, min=dead_letter_id, max=dead_letter_id)
        if (_valid_id(dead_letter_id))
        else []
    )
    if not entries:
        raise DeadLetterNotFound(
            f"No dead letter {dead_letter_id!r}: it was replayed, discarded or never parked."
        )
    msg_id, fields = entries[0]
    return msg_id, dict(fields or {})


async def replay(redis: Redis, dead_letter_id: str, *, maxlen: int) -> str:
    """Send a parked job to its queue again (a new message: fresh delivery count) and remove it
    from the dead letters; returns the new message's id. Raises DeadLetterNotFound."""
    msg_id, fields = await _entry(redis, dead_letter_id)
    f = {_text(k): v for k, v in fields.items()}
    stream = stream_name(_text(f["queue"]))
    new_id = await redis.eval(_REPLAY, 2, DEAD_LETTER_STREAM, stream, msg_id, f["data"], maxlen)
    if not new_id:
        raise DeadLetterNotFound(
            f"No dead letter {dead_letter_id!r}: it was replayed or discarded meanwhile."
        )
    return _text(new_id)


async def discard(redis: Redis, dead_letter_id: str) -> None:
    """Delete a parked job for good. Raises DeadLetterNotFound."""
    if not _valid_id(dead_letter_id) or not await redis.xdel(DEAD_LETTER_STREAM, dead_letter_id):
        raise DeadLetterNotFound(
            f"No dead letter {dead_letter_id!r}: it was replayed, discarded or never parked."
        )


def queue_of_stream(stream: str) -> str:
    return stream.removeprefix(STREAM_PREFIX)


def _print(letter: DeadLetter) -> None:
    parked = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(letter.parked_at))
    print(f"{letter.id}  {letter.queue:<9} {letter.task_name}  task {letter.task_id}")
    print(f"    parked {parked} UTC: {letter.reason} after {letter.deliveries}")
    if letter.consumers:
        print(f"    held by {', '.join(letter.consumers)}")
    for error in letter.errors:
        print(f"    attempt {error.get('attempt')}: {error.get('error')}")


async def _run(args: Any) -> int:
    from core.settings import get_settings  # noqa: PLC0415  # the worker's modules import this one
    from tasks.runtime.factory import redis_url_for  # noqa: PLC0415

    settings = get_settings()
    async with Redis.from_url(redis_url_for(settings)) as redis:
        try:
            if args.command == "list":
                page = await list_dead_letters(redis, after=args.after, limit=args.limit)
                for letter in page.items:
                    _print(letter)
                total = await count_dead_letters(redis)
                more = f"; next page: --after {page.next_cursor}" if page.next_cursor else ""
                print(f"{len(page.items)} of {total} parked{more}")
            elif args.command == "show":
                _print(await get_dead_letter(redis, args.id))
            elif args.command == "replay":
                new_id = await replay(redis, args.id, maxlen=settings.task_stream_maxlen)
                print(f"{args.id} sent again as {new_id}")
            else:
                await discard(redis, args.id)
                print(f"{args.id} discarded")
        except DeadLetterNotFound as exc:
            print(exc.detail)
            return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    """``python -m tasks.runtime.deadletters list|show ID|replay ID|drop ID`` (``just dead-letters``)."""
    import argparse  # noqa: PLC0415
    import asyncio  # noqa: PLC0415
    import sys  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="dead-letters", description="Jobs parked in the dead letters.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="parked jobs, oldest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--after", help="the id the previous page ended with")
    for name, text in (
        ("show", "one in full"),
        ("replay", "send it to its queue again"),
        ("drop", "discard it"),
    ):
        commands.add_parser(name, help=text).add_argument("id")
    sys.exit(asyncio.run(_run(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
