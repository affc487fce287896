"""Staff hold and release a vendor's payouts (``POST /staff/vendors/{id}/payouts/hold|release``).

While held, the vendor cannot ask for a payout (409), the scheduled run skips them, and payouts
already made but not yet sent stay ``pending`` (the transfer job leaves them alone). Releasing
queues the transfer job again for those. A transfer the provider already accepted cannot be
called back: it settles as usual. Both moves take the vendor's row lock (as making a payout
does) and are written to the audit log with the staff member and the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select

from core.jobs import defer
from core.logging import get_logger
from core.task_names import SEND_PAYOUT
from db.models import Payout, Vendor
from db.services.catalog.errors import VendorNotFound
from db.services.identity.audit import AuditLog
from db.services.payouts.accounts import lock_vendor

log = get_logger(__name__)

PAYOUTS_HELD = "payouts_held"
PAYOUTS_RELEASED = "payouts_released"


async def hold(audit: AuditLog, vendor_id: UUID, *, reason: str, staff_id: UUID) -> Vendor:
    """Hold the vendor's payouts (holding again updates the reason).

    Raises:
        VendorNotFound: no such vendor (404).
    """
    vendor = await lock_vendor(audit.session, vendor_id)
    if vendor is None:
        raise VendorNotFound()
    if not vendor.payouts_on_hold:
        vendor.payouts_held_at = datetime.now(UTC)
    vendor.payouts_on_hold = True
    vendor.payouts_hold_reason = reason
    audit.record(PAYOUTS_HELD, user_id=vendor.owner_id, actor_id=staff_id, vendor_id=vendor.id, reason=reason)
    log.info("payouts held", vendor_id=str(vendor_id))
    return vendor


async def release(audit: AuditLog, vendor_id: UUID, *, staff_id: UUID) -> Vendor:
    """Release the vendor's payouts; pending ones are queued to be sent. Releasing payouts that
    are not held changes nothing.

    Raises:
        VendorNotFound: no such vendor (404).
    """
    vendor = await lock_vendor(audit.session, vendor_id)
    if vendor is None:
        raise VendorNotFound()
    if not vendor.payouts_on_hold:
        return vendor
    vendor.payouts_on_hold = False
    vendor.payouts_hold_reason = None
    vendor.payouts_held_at = None
    pending = await audit.session.scalars(
        select(Payout.id).where(Payout.vendor_id == vendor_id, Payout.status == "pending")
    )
    for payout_id in pending:
        defer(SEND_PAYOUT, str(payout_id), durable=True)
    audit.record(PAYOUTS_RELEASED, user_id=vendor.owner_id, actor_id=staff_id, vendor_id=vendor.id)
    log.info("payouts released", vendor_id=str(vendor_id))
    return vendor
