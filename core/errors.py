"""Domain errors shared by every domain. They are mapped to HTTP in one place (``api/errors.py``).

Domain modules subclass these (``class VariantNotFound(NotFound)``) so the API layer maps a
whole family with one rule and the worker can tell retryable failures from final ones.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every expected, explainable failure."""

    status_code = 400
    title = "Bad request"
    # Stable, machine-readable code for clients (problem+json ``type`` suffix).
    code = "bad_request"
    # When True the unit of work commits what was done before the error was raised (an audit
    # entry, a failed-attempt counter) instead of rolling it back; the error still reaches
    # the client.
    preserve_changes = False

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra or {}


class NotFound(DomainError):
    status_code = 404
    title = "Not found"
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"
    code = "conflict"


class PermissionDenied(DomainError):
    status_code = 403
    title = "Forbidden"
    code = "forbidden"


class NotAuthenticated(DomainError):
    status_code = 401
    title = "Not authenticated"
    code = "not_authenticated"


class InvalidInput(DomainError):
    """Input that is well-formed but not acceptable; ``errors`` names the fields."""

    status_code = 422
    title = "Validation failed"
    code = "validation_failed"

    def __init__(self, detail: str | None = None, *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail, extra={"errors": errors or []})
        self.errors = errors or []


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` seconds until the window frees up."""

    status_code = 429
    title = "Too many requests"
    code = "rate_limited"

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail or "Too many attempts. Please wait before trying again.")
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(DomainError):
    """A dependency (database, Redis, a worker) is down or overloaded; the client should retry."""

    status_code = 503
    title = "Service unavailable"
    code = "service_unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
