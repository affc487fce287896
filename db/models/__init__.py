"""Tables, one aggregate per module. Importing this package registers every table's metadata."""

from db.models.base import Base, metadata
from db.models.outbox import OutboxMessage

__all__ = ["Base", "OutboxMessage", "metadata"]
