"""Tables, one aggregate per module. Importing this package registers every table's metadata."""

from db.models.audit_event import AuditEvent
from db.models.base import Base, metadata
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
from db.models.one_time_code import OneTimeCode
from db.models.outbox import OutboxMessage
from db.models.refresh_token import RefreshToken
from db.models.user import ROLES, Role, User

__all__ = [
    "ROLES",
    "AuditEvent",
    "Base",
    "Brand",
    "Category",
    "FitProfile",
    "Measurement",
    "OneTimeCode",
    "OutboxMessage",
    "Product",
    "ProductImage",
    "RefreshToken",
    "Role",
    "SizeChartRow",
    "User",
    "Variant",
    "Vendor",
    "metadata",
]
