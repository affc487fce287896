"""Tables, one aggregate per module. Importing this package registers every table's metadata."""

from db.models.audit_event import AuditEvent
from db.models.base import Base, metadata
from db.models.cart import CartItem
from db.models.catalog import (
    Brand,
    Category,
    FitProfile,
    Product,
    ProductImage,
    SizeChartRow,
    Variant,
    Vendor,
)
from db.models.fulfilment import FULFILMENT_STATUSES, Fulfilment
from db.models.ledger import CommissionRule, LedgerAccount, LedgerEntry, LedgerTransaction
from db.models.measurement import Measurement
from db.models.notification import Notification
from db.models.one_time_code import OneTimeCode
from db.models.order import IdempotencyKey, Order, OrderEvent, OrderLine
from db.models.outbox import OutboxMessage
from db.models.payment import Payment, PaymentEvent, Refund
from db.models.payout import PAYOUT_STATUSES, Payout, PayoutAccount
from db.models.refresh_token import RefreshToken
from db.models.returns import Return, ReturnLine
from db.models.review import Review
from db.models.sent_mail import SentMail
from db.models.shipping import SHIPPING_KINDS, ShippingMethod
from db.models.shopper_sizes import shopper_cells, shopper_sizes, shopper_totals
from db.models.user import ROLES, Role, User
from db.models.voucher import CartVoucher, Voucher, VoucherRedemption
from db.models.wishlist import WishlistItem

__all__ = [
    "FULFILMENT_STATUSES",
    "PAYOUT_STATUSES",
    "ROLES",
    "SHIPPING_KINDS",
    "AuditEvent",
    "Base",
    "Brand",
    "CartItem",
    "CartVoucher",
    "Category",
    "CommissionRule",
    "FitProfile",
    "Fulfilment",
    "IdempotencyKey",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "Measurement",
    "Notification",
    "OneTimeCode",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OutboxMessage",
    "Payment",
    "PaymentEvent",
    "Payout",
    "PayoutAccount",
    "Product",
    "ProductImage",
    "RefreshToken",
    "Refund",
    "Return",
    "ReturnLine",
    "Review",
    "Role",
    "SentMail",
    "ShippingMethod",
    "SizeChartRow",
    "User",
    "Variant",
    "Vendor",
    "Voucher",
    "VoucherRedemption",
    "WishlistItem",
    "metadata",
    "shopper_cells",
    "shopper_sizes",
    "shopper_totals",
]
