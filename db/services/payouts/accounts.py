"""A vendor's payout account: the bank account payouts go to (``PUT /vendor/payout-account``).

Registering asks the provider to resolve the account (the name on it, which the vendor is shown
to confirm) and to make it a transfer recipient, whose code every payout names from then on. The
full account number is used for those two calls only and never stored (see
:class:`db.models.PayoutAccount`). Giving the same account again changes nothing and asks the
provider nothing; another account replaces it (payouts already made keep the account they named).
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import PaymentProvider, PaymentProviderRefused
from core.logging import get_logger
from db.models import PayoutAccount, Vendor
from db.services.payouts.errors import AccountNotResolved

log = get_logger(__name__)


def account_hash(secret: str, bank_code: str, account_number: str) -> str:
    """A keyed hash of the account (HMAC-SHA256; the key is derived from ``SECRET_KEY`` for this use
    only): ten digits hashed without a key could be recovered by hashing every number."""
    key = hashlib.sha256(b"fashionistar payout account\x00" + secret.encode()).digest()
    return hmac.new(key, f"{bank_code}:{account_number}".encode(), hashlib.sha256).hexdigest()


async def account_of(session: AsyncSession, vendor_id: UUID) -> PayoutAccount | None:
    return await session.scalar(select(PayoutAccount).where(PayoutAccount.vendor_id == vendor_id))


async def lock_vendor(session: AsyncSession, vendor_id: UUID) -> Vendor | None:
    """The vendor's row, locked: registering an account, making a payout and holding payouts take
    it first, so for one vendor they happen one at a time."""
    return await session.scalar(select(Vendor).where(Vendor.id == vendor_id).with_for_update())


async def register_account(
    session: AsyncSession,
    provider: PaymentProvider,
    vendor_id: UUID,
    *,
    bank_code: str,
    account_number: str,
    secret: str,
    currency: str,
) -> PayoutAccount:
    """Register or replace the vendor's payout account.

    Raises:
        AccountNotResolved: the provider does not resolve the account, or will not pay it (422).
        PaymentProviderError: the provider cannot be asked (503 + Retry-After).
    """
    await lock_vendor(session, vendor_id)
    existing = await account_of(session, vendor_id)
    digest = account_hash(secret, bank_code, account_number)
    if existing is not None and (
        existing.account_hash,
        existing.bank_code,
        existing.provider,
        existing.currency,
    ) == (digest, bank_code, provider.name, currency):
        return existing
    field = [{"field": "account_number", "message": "does not resolve at this bank"}]
    try:
        name = await provider.resolve_account(bank_code, account_number)
        recipient_code = await provider.create_recipient(name, account_number, bank_code, currency)
    except PaymentProviderRefused as refused:
        log.info("payout account refused", vendor_id=str(vendor_id), bank_code=bank_code)
        raise AccountNotResolved(
            f"The bank account could not be verified: {refused.detail}", errors=field
        ) from None
    account = existing or PayoutAccount(vendor_id=vendor_id)
    account.provider = provider.name
    account.bank_code = bank_code
    account.account_last4 = account_number[-4:]
    account.account_hash = digest
    account.account_name = name[:200]
    account.recipient_code = recipient_code
    account.currency = currency
    session.add(account)
    await session.flush()
    log.info("payout account registered", vendor_id=str(vendor_id), replaced=existing is not None)
    return account
