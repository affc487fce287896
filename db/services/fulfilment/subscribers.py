"""What follows a fulfilment's move: the shopper's notice (and a mail with the tracking when it
shipped). Jobs are deferred durably inside the unit of work that moved it."""

from __future__ import annotations

from core.events import EventBus
from core.jobs import defer
from core.task_names import NOTIFY_FULFILMENT_UPDATE, SEND_SHIPMENT_MAIL
from db.services.fulfilment.events import FulfilmentMoved
from db.services.notifications.fulfilments import FULFILMENT_KINDS


def on_fulfilment_moved(event: FulfilmentMoved) -> None:
    fulfilment_id = str(event.fulfilment_id)
    kind = FULFILMENT_KINDS.get("lines_cancelled" if event.partial else event.to_status)
    if kind is not None:
        defer(NOTIFY_FULFILMENT_UPDATE, fulfilment_id, kind, str(event.change_id), durable=True)
    if event.to_status == "shipped":
        defer(SEND_SHIPMENT_MAIL, fulfilment_id, durable=True)


def register(bus: EventBus) -> None:
    bus.subscribe(FulfilmentMoved, on_fulfilment_moved)
