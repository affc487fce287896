"""Every error leaves the API as ``application/problem+json`` (RFC 9457) with the request id.

One table maps exceptions to statuses: Litestar's HTTP exceptions keep theirs (validation
becomes 422 with per-field errors), domain errors carry their own, infrastructure outages
become 503 + ``Retry-After``, and anything else is a 500 whose details go to the log only.
"""

from __future__ import annotations

import asyncio
import re
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from core.context import get_request_id
from core.errors import DomainError, InvalidInput, RateLimited, ServiceUnavailable
from core.logging import get_logger
from core.outages import is_outage
from db.engine import DRIVER_UNAVAILABLE

log = get_logger("api.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://docs.fashionistar.dev/problems/"


class FieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, as every error response of this API."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


def problem_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    phrase = HTTPStatus(status).phrase
    problem = Problem(
        type=TYPE_BASE + (code or phrase.lower().replace(" ", "_").replace("-", "_")),
        title=title or phrase,
        status=status,
        detail=detail,
        request_id=get_request_id(),
        errors=errors,
    )
    return Response(content=problem, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# msgspec names the offending field inside its message for object-level problems.
_NAMED_FIELD = re.compile(r"(?:missing required field|contains unknown field) `([^`]+)`")
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`")
# Litestar's message for a missing header/query/path/cookie parameter, which has no field list.
_MISSING_PARAMETER = re.compile(r"^Missing required (?:header|query|path|cookie) parameter '([^']+)'")


def _field_name(key: str, message: str) -> str:
    named = _NAMED_FIELD.search(message)
    path = _AT_PATH.search(message)
    if named:
        prefix = path.group(1) if path and path.group(1) else ("" if key in ("data", "body", "") else key)
        return f"{prefix}.{named.group(1)}" if prefix else named.group(1)
    if key in ("data", "body", "") and path and path.group(1):
        return path.group(1)
    return key or "body"


def _field_errors(extra: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                key = str(item.get("key") or item.get("field") or "")
                message = str(item.get("message", "invalid"))
                errors.append(FieldError(field=_field_name(key, message), message=message))
    return errors


def handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    errors = _field_errors(exc.extra)
    missing = _MISSING_PARAMETER.match(str(exc.detail or ""))
    if not errors and missing:
        errors = [FieldError(field=missing.group(1), message="required")]
    detail = "The request has invalid or missing fields." if errors else str(exc.detail)
    return problem_response(422, detail, code="validation_failed", title="Validation failed", errors=errors)


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    if isinstance(exc, ValidationException):
        return handle_validation(request, exc)
    if isinstance(exc.__cause__, SerializationException):
        return problem_response(
            400, f"The request body is not valid JSON ({exc.detail}).", code="malformed_body"
        )
    status = exc.status_code
    detail = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    if status == 413:
        detail = "The request body is larger than this endpoint accepts."
    headers = dict(exc.headers or {})
    return problem_response(status, detail, headers=headers or None)


def handle_domain(request: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    headers = None
    errors = None
    if isinstance(exc, ServiceUnavailable | RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, InvalidInput):
        errors = [FieldError(field=e.get("field", ""), message=e.get("message", "")) for e in exc.errors]
    return problem_response(
        exc.status_code, exc.detail, code=exc.code, title=exc.title, errors=errors, headers=headers
    )


_UNAVAILABLE = (
    *DRIVER_UNAVAILABLE,
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    asyncio.TimeoutError,
)


def _is_unavailable(exc: BaseException) -> bool:
    if is_outage(exc, also=_UNAVAILABLE):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError)


# PostgreSQL refuses to store some characters sent in a request: U+0000 in text (22021) and
# in JSON (22P05). That is the request's fault, not ours.
_UNSTORABLE_CHARACTER = frozenset({"22021", "22P05"})


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_unstorable_character(exc: BaseException) -> bool:
    return any(getattr(e, "sqlstate", None) in _UNSTORABLE_CHARACTER for e in _causes(exc))


def _is_too_deep_json(exc: BaseException) -> bool:
    """A JSON body nested deeper than the decoder recurses (msgspec raises RecursionError)."""
    if not isinstance(exc, RecursionError):
        return False
    names = []
    tb = exc.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return "decode_json" in names


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    if _is_too_deep_json(exc):
        return problem_response(400, "The request body is nested too deeply.", code="malformed_body")
    if _is_unstorable_character(exc):
        return problem_response(
            422,
            "The request contains a character that cannot be stored (such as U+0000).",
            code="invalid_character",
            title="Validation failed",
        )
    if _is_unavailable(exc):
        log.warning("dependency unavailable", error=type(exc).__name__, path=request.url.path)
        return problem_response(
            503,
            "A service this request needs is unavailable. Please retry shortly.",
            code="service_unavailable",
            headers={"Retry-After": "5"},
        )
    log.error("unhandled error", path=request.url.path, method=request.method, exc_info=exc)
    return problem_response(
        500, "Something went wrong on our side; it has been logged.", code="internal_error"
    )


exception_handlers: dict[type[Exception] | int, Any] = {
    HTTPException: handle_http,
    DomainError: handle_domain,
    Exception: handle_unexpected,
}
