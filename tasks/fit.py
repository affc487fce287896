"""Keeping "shoppers like me" counted (``db.services.fit.shopper_sizes``).

Deferred when an order starts or stops counting as kept (paid; cancelled, refunded) and when a
measurement is ready. The counts are rebuilt from the orders, so a second run is harmless.
"""

from __future__ import annotations

from uuid import UUID

from core.logging import get_logger
from db.services.fit.shopper_sizes import refresh_shopper
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources

log = get_logger(__name__)


@queue_task("analytics", "fit.refresh_shopper_sizes")
async def refresh_shopper_sizes(user_id: str, resources: Resources) -> str:
    """Recount the sizes kept in every scope the shopper's orders touch, in their cell(s)."""
    async with resources.uow() as session:
        scopes = await refresh_shopper(session, UUID(user_id))
    log.info("shopper sizes recounted", user_id=user_id, scopes=scopes)
    return "recounted"
