"""A small, explicit, typed event bus.

Events are msgspec Structs named in the past tense (``OrderPlaced``). Subscribers are plain
functions registered at start-up by each domain's ``register(bus)`` function; there is no
import-time registration. Publishing runs the subscribers synchronously inside the caller's
unit of work: subscribers do not do I/O themselves, they :func:`core.jobs.defer` jobs, which
therefore share the fate of the transaction that published the event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from core.logging import get_logger

log = get_logger(__name__)


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base class of domain events."""


E = TypeVar("E", bound=Event)
Subscriber = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[type[Event], list[Subscriber]] = defaultdict(list)

    def subscribe(self, event_type: type[E], subscriber: Callable[[E], None]) -> None:
        """Call ``subscriber(event)`` for every published event of exactly ``event_type``."""
        if subscriber in self._subscribers[event_type]:
            return
        self._subscribers[event_type].append(subscriber)

    def subscribers(self, event_type: type[Event]) -> list[Subscriber]:
        return list(self._subscribers.get(event_type, ()))

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to its subscribers, in registration order.

        A subscriber's exception propagates: the publisher's transaction then rolls back, so an
        event is never half-handled.
        """
        subs = self._subscribers.get(type(event), ())
        log.debug("event published", event_type=type(event).__name__, subscribers=len(subs))
        for subscriber in subs:
            subscriber(event)


_bus: EventBus | None = None


def get_event_bus() -> EventBus:
    """The process-wide bus. Subscribers are registered on it at start-up by
    ``db.services.subscribers.register_all`` (API and workers)."""
    global _bus  # noqa: PLW0603  # one bus per process, built lazily on first use
    if _bus is None:
        _bus = EventBus()
    return _bus
