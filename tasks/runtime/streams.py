"""A Redis Streams broker that reclaims a dead worker's messages even when the queue is idle.

taskiq-redis's ``RedisStreamBroker`` reads with a consumer group and acknowledges after the
result is saved, so a message whose worker dies stays pending. Its ``listen`` only looks for
such messages after new ones arrive, though: on a quiet queue a killed worker's message would
wait for the next unrelated job. This subclass claims idle pending messages on a timer
(``XAUTOCLAIM`` is atomic, so two workers never claim the same message) and reads every queue
this worker serves from one ``XREADGROUP`` call.

While a message is being worked on, the worker renews its claim (see ``_beat``). When its
processing ends without an acknowledgement (an error outside the task itself: its retry could
not be sent because Redis was restarting, say), :class:`ReleasingReceiver` tells the broker to
stop renewing it, so it is redelivered once idle instead of being held until the worker exits.

A message that keeps killing its worker would be redelivered forever. Before claiming idle
messages the broker reads their delivery counts (``XPENDING``): one delivered
``dead_letter_after`` times is parked in the dead letters instead (``tasks.runtime.deadletters``),
and the consumer that held each redelivered message is noted for its history. Redelivered
messages run one at a time with nothing else beside them (``_redeliver_alone``), so a job that
kills its worker does not take the jobs it was sent with down with it each time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker

from core.logging import get_logger
from tasks.runtime.deadletters import park, queue_of_stream, record_delivery
from tasks.runtime.queues import stream_name

log = get_logger(__name__)


class StreamMessage(AckableMessage):
    """A stream entry being worked on; ``release`` stops renewing its claim (without acknowledging)."""

    release: Callable[[], None]


class ReleasingReceiver(Receiver):
    """taskiq's receiver, releasing each message once its processing is over (acknowledged or not).

    An error that escapes processing (the retry middleware could not send the retry, the
    acknowledgement itself failed) leaves the message unacknowledged: it is logged here and the
    message, released, is redelivered after ``TASK_REDELIVERY_IDLE_SECONDS``.
    """

    async def callback(self, message: bytes | AckableMessage, raise_err: bool = False) -> None:
        try:
            await super().callback(message, raise_err=raise_err)
        except Exception as exc:
            log.warning("message not finished; it will be redelivered", error=repr(exc)[:500])
        finally:
            if isinstance(message, StreamMessage):
                message.release()


class ReliableStreamBroker(RedisStreamBroker):
    def __init__(
        self,
        url: str,
        *,
        queues: Sequence[str],
        redelivery_idle_seconds: float,
        claim_interval_seconds: float | None = None,
        dead_letter_after: int = 0,
        **kwargs: Any,
    ) -> None:
        streams = [stream_name(q) for q in queues]
        super().__init__(
            url,
            queue_name=streams[0],
            idle_timeout=int(redelivery_idle_seconds * 1000),
            **kwargs,
        )
        self.streams = streams
        # XREADGROUP blocks this long; the socket timeout must be longer (see tasks.runtime.factory).
        self.block = 1000
        self.claim_interval = claim_interval_seconds or max(0.5, redelivery_idle_seconds / 4)
        # Messages this worker is running, per stream: their idle time is reset on a timer
        # (heartbeat) so a task that runs longer than the redelivery idle time is not handed to
        # another worker while it is still running. A dead worker stops beating.
        self._in_flight: dict[str, set[Any]] = {stream: set() for stream in streams}
        self._heartbeat: asyncio.Task[None] | None = None
        # Deliveries without an acknowledgement after which a message is parked (0: never).
        self.dead_letter_after = dead_letter_after
        # Called with (queue, reason) for each job parked here (the worker counts them).
        self.on_park: Callable[[str, str], None] | None = None

    async def _declare_consumer_group(self) -> None:
        async with Redis(connection_pool=self.connection_pool) as conn:
            for stream in self.streams:
                try:
                    # id "0": a group created after messages were sent still sees them.
                    await conn.xgroup_create(stream, self.consumer_group_name, id="0", mkstream=True)
                except ResponseError as err:
                    if "BUSYGROUP" not in str(err):
                        raise

    def _message(self, stream: str, msg_id: Any, fields: Any) -> AckableMessage | None:
        data = fields.get(b"data") if fields else None
        if data is None:  # trimmed or malformed entry: nothing to run, drop it from the PEL
            return None
        ack = self._ack_generator(id=msg_id, queue_name=stream)
        in_flight = self._in_flight.setdefault(stream, set())
        in_flight.add(msg_id)

        async def ack_and_forget() -> None:
            try:
                await ack()
            finally:
                in_flight.discard(msg_id)

        return StreamMessage(data=data, ack=ack_and_forget, release=lambda: in_flight.discard(msg_id))

    async def _beat(self) -> None:
        """Reset the idle time of the messages this worker is running, every claim interval."""
        while True:
            await asyncio.sleep(self.claim_interval)
            try:
                async with Redis(connection_pool=self.connection_pool) as conn:
                    for stream, ids in self._in_flight.items():
                        if ids:
                            await conn.xclaim(
                                stream,
                                self.consumer_group_name,
                                self.consumer_name,
                                min_idle_time=0,
                                message_ids=list(ids),
                                justid=True,
                            )
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("heartbeat failed; retrying", error=repr(exc)[:200])

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat())
        backoff = 0.5
        while True:
            try:
                async for message in self._listen_once():
                    backoff = 0.5
                    yield message
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                # Redis restarting or unreachable: keep the worker alive and reconnect.
                log.warning("redis unavailable; reconnecting", error=repr(exc)[:200], retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _listen_once(self) -> AsyncGenerator[AckableMessage, None]:
        async with Redis(connection_pool=self.connection_pool) as conn:
            await self._declare_consumer_group()
            next_claim = 0.0
            while True:
                if time.monotonic() >= next_claim:
                    for stream in self.streams:
                        async for message in self._claim_idle(conn, stream):
                            yield message
                    next_claim = time.monotonic() + self.claim_interval
                fetched = await conn.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    dict.fromkeys(self.streams, ">"),
                    block=min(self.block, int(self.claim_interval * 1000)),
                    count=self.count,
                )
                replies: list[Any] = fetched or []  # type: ignore[assignment]  # redis-py types it loosely
                for stream, entries in replies:
                    stream_key = stream.decode() if isinstance(stream, bytes) else str(stream)
                    for msg_id, fields in entries:
                        found = self._message(stream_key, msg_id, fields)
                        if found is None:
                            await conn.xack(stream_key, self.consumer_group_name, msg_id)
                            continue
                        yield found

    async def _idle_pending(self, conn: Redis, stream: str) -> dict[Any, tuple[str, int]]:
        """Messages of ``stream`` idle past the redelivery time: id -> (consumer, deliveries)."""
        found: dict[Any, tuple[str, int]] = {}
        start: Any = "-"
        while True:
            page = await conn.xpending_range(
                stream,
                self.consumer_group_name,
                min=start,
                max="+",
                count=self.unacknowledged_batch_size,
                idle=self.idle_timeout,
            )
            for entry in page:
                found[entry["message_id"]] = (_text(entry["consumer"]), int(entry["times_delivered"]))
            if len(page) < self.unacknowledged_batch_size:
                return found
            start = "(" + _text(page[-1]["message_id"])

    async def _claim_if_idle(self, conn: Redis, stream: str, msg_id: Any) -> Any:
        """XCLAIM one message for this consumer if it is still idle past the redelivery time: the
        claimed (id, fields) pairs, empty when another worker took it first."""
        return await conn.xclaim(
            stream,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            message_ids=[msg_id],
        )

    async def _park_exhausted(self, conn: Redis, stream: str, idle: dict[Any, tuple[str, int]]) -> None:
        """Park the idle messages already delivered ``dead_letter_after`` times."""
        for msg_id, (consumer, deliveries) in idle.items():
            if deliveries < self.dead_letter_after:
                continue
            # Of two workers parking at once, one gets it.
            claimed = await self._claim_if_idle(conn, stream, msg_id)
            if not claimed:
                continue
            fields: Any = claimed[0][1] or {}  # redis-py types the reply loosely: (id, fields) pairs
            data = fields.get(b"data")
            if data is None:
                await conn.xack(stream, self.consumer_group_name, msg_id)
                continue
            queue = queue_of_stream(stream)
            dead_id = await park(
                conn,
                queue=queue,
                data=data,
                reason="deliveries",
                deliveries=deliveries,
                source=(stream, self.consumer_group_name, _text(msg_id)),
                consumer=consumer,
            )
            log.error(
                "message parked in the dead letters: delivered too often without an acknowledgement",
                stream=stream,
                deliveries=deliveries,
                dead_letter_id=dead_id,
            )
            if self.on_park is not None:
                self.on_park(queue, "deliveries")

    async def _claim_idle(self, conn: Redis, stream: str) -> AsyncGenerator[AckableMessage, None]:
        if self.dead_letter_after > 0:
            idle = await self._idle_pending(conn, stream)
            await self._park_exhausted(conn, stream, idle)
            async for alone in self._redeliver_alone(conn, stream, idle):
                yield alone
            return
        start = "0-0"
        while True:
            reply = await conn.xautoclaim(
                stream,
                self.consumer_group_name,
                self.consumer_name,
                min_idle_time=self.idle_timeout,
                start_id=start,
                count=self.unacknowledged_batch_size,
            )
            start, claimed = reply[0], reply[1]
            for msg_id, fields in claimed:
                message = self._message(stream, msg_id, fields)
                if message is None:
                    await conn.xack(stream, self.consumer_group_name, msg_id)
                    continue
                log.warning("redelivering a message a worker did not finish", stream=stream)
                yield message
            if start in (b"0-0", "0-0"):
                return

    async def _redeliver_alone(
        self, conn: Redis, stream: str, idle: dict[Any, tuple[str, int]]
    ) -> AsyncGenerator[AckableMessage, None]:
        """Redeliver a dead worker's messages one at a time, each with nothing else running here.

        One of them may be what killed that worker. Run beside other jobs, it would kill them too
        and count a delivery against each of them, until they were all parked with it; alone, it
        kills only itself, and the others it was sent with run to completion. New messages wait
        meanwhile (redeliveries are rare: they follow a worker's death).
        """
        yielded = False
        for msg_id, (consumer, deliveries) in idle.items():
            if deliveries >= self.dead_letter_after:
                continue  # parked (or left to whoever parked it)
            await self._drain()
            # Another worker may have taken it meanwhile.
            claimed = await self._claim_if_idle(conn, stream, msg_id)
            if not claimed:
                continue
            fields: Any = claimed[0][1]  # redis-py types the reply loosely: (id, fields) pairs
            message = self._message(stream, msg_id, fields)
            if message is None:
                await conn.xack(stream, self.consumer_group_name, msg_id)
                continue
            await record_delivery(conn, stream, _text(msg_id), consumer)
            log.warning(
                "redelivering a message a worker did not finish", stream=stream, deliveries=deliveries
            )
            yielded = True
            yield message
        if yielded:
            await self._drain()

    async def _drain(self) -> None:
        """Wait until no message of this worker is running (at most the redelivery idle time)."""
        deadline = time.monotonic() + self.idle_timeout / 1000
        # Polled: messages leave the in-flight sets from several places (ack, release, heartbeat).
        while any(self._in_flight.values()) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
