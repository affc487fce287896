"""Domain events of fulfilments, published inside the unit of work that moved one."""

from __future__ import annotations

from uuid import UUID

from core.events import Event


class FulfilmentMoved(Event, frozen=True, kw_only=True):
    """A fulfilment changed status (``cancelled`` also for lines cancelled, with ``partial``)."""

    fulfilment_id: UUID
    order_id: UUID
    user_id: UUID
    to_status: str
    # The audit row of the move: a notice is sent once per move.
    change_id: UUID
    partial: bool = False
