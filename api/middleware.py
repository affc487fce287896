"""ASGI middleware: request id, job buffer, security headers, access log.

Written as plain ASGI (not Litestar's ``AbstractMiddleware``) because it wraps every response,
including the ones produced by exception handlers and routing errors.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType

from core.context import REQUEST_ID_HEADER, accept_request_id, reset_request_id, set_request_id
from core.jobs import job_buffer
from core.logging import get_logger

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from core.settings import Settings

log = get_logger("api.access")

_API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The API docs page loads its renderer's script and styles from a CDN.
_DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
_QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})


class RequestContextMiddleware:
    """Per request: a request id (echoed when valid), a job buffer, security headers, an access log line."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.access_log = settings.log_level.upper() in ("DEBUG", "INFO")
        hsts = f"max-age={settings.hsts_max_age_seconds}; includeSubDomains"
        self.static_headers = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Strict-Transport-Security", hsts),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]

        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = accept_request_id(incoming)
        token = set_request_id(request_id)
        path: str = scope["path"]
        csp = _DOCS_CSP if path.startswith("/schema") and not path.endswith(".json") else _API_CSP
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableScopeHeaders.from_message(message)
                headers[REQUEST_ID_HEADER] = request_id
                for name, value in self.static_headers:
                    headers.add(name, value)
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = csp
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        try:
            with job_buffer():
                await self.app(scope, receive, send_wrapper)
        finally:
            if self.access_log and path not in _QUIET_PATHS:
                log.info(
                    "request",
                    method=method,
                    path=path,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            reset_request_id(token)
