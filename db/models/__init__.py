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
from db.models.measurement import Measurement
from db.models.notification import Notification
from db.models.one_time_code import OneTimeCode
from db.models.order import IdempotencyKey, Order, OrderEvent, OrderLine
from db.models.outbox import OutboxMessage
from db.models.payment import Payment, PaymentEvent
from db.models.refresh_token import RefreshToken
from db.models.review import Review
from db.models.sent_mail import SentMail
from db.models.user import ROLES, Role, User
from db.models.wishlist import WishlistItem

__all__ = [
    "ROLES",
    "AuditEvent",
    "Base",
    "Brand",
    "CartItem",
    "Category",
    "FitProfile",
    "IdempotencyKey",
    "Measurement",
    "Notification",
    "OneTimeCode",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OutboxMessage",
    "Payment",
    "PaymentEvent",
    "Product",
    "ProductImage",
    "RefreshToken",
    "Review",
    "Role",
    "SentMail",
    "SizeChartRow",
    "User",
    "Variant",
    "Vendor",
    "WishlistItem",
    "metadata",
]
