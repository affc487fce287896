"""Every domain's event subscribers, registered on a bus at process start-up (API and worker).

Each domain keeps its own ``register(bus)`` next to its handlers; this is the one call site.
"""

from __future__ import annotations

from core.events import EventBus
from db.services.fulfilment import subscribers as fulfilment
from db.services.orders import subscribers as orders


def register_all(bus: EventBus) -> None:
    """Subscribe every domain's handlers on ``bus``; calling it again adds nothing."""
    orders.register(bus)
    fulfilment.register(bus)
