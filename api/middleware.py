"""ASGI middleware: request id, job buffer, security headers, HTTP metrics, access log.

Written as plain ASGI (not Litestar's ``AbstractMiddleware``) because it wraps every response,
including the ones produced by exception handlers and routing errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from api.metrics import HttpMetrics
from core.context import REQUEST_ID_HEADER, accept_request_id, reset_request_id, set_request_id
from core.jobs import job_buffer
from core.logging import LineLog

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from core.settings import Settings

log = LineLog("api.access")

_API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The API docs page loads its renderer's script and styles from a CDN.
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src https://fonts.gstatic.com https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    b"connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode("latin-1")
# Probes and scrapes: neither logged nor counted.
_QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})


class RequestContextMiddleware:
    """Per request: a request id (echoed when valid), a job buffer, security headers, the HTTP
    metrics and an access log line."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.metrics = HttpMetrics()
        self.access_log = settings.log_level.upper() in ("DEBUG", "INFO")
        hsts = f"max-age={settings.hsts_max_age_seconds}; includeSubDomains"
        # Raw ASGI headers (lower-case names, latin-1 bytes), encoded once.
        self.static_headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"strict-transport-security", hsts.encode("latin-1")),
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
                message["headers"] = self._headers(message.get("headers") or (), request_id, csp)
            await send(message)

        quiet = path in _QUIET_PATHS
        in_progress = None if quiet else self.metrics.in_progress(method)
        if in_progress is not None:
            in_progress.inc()
        try:
            with job_buffer():
                await self.app(scope, receive, send_wrapper)
        finally:
            if in_progress is not None:
                seconds = time.perf_counter() - started
                in_progress.dec()
                # The router put the matched route's template in the scope (none: no route).
                self.metrics.observe(method, scope.get("path_template"), status, seconds)
                if self.access_log:
                    duration_ms = round(seconds * 1000, 2)
                    log.info("request", method=method, path=path, status=status, duration_ms=duration_ms)
            reset_request_id(token)

    def _headers(
        self, headers: Iterable[tuple[bytes, bytes]], request_id: str, csp: bytes
    ) -> list[tuple[bytes, bytes]]:
        """The response's headers with the request id (replacing any the handler set), the static
        security headers, and a CSP and ``Cache-Control: no-store`` unless the handler chose its own."""
        out: list[tuple[bytes, bytes]] = []
        has_csp = has_cache_control = False
        for name, value in headers:
            lower = name.lower()
            if lower == _REQUEST_ID:
                continue
            if lower == b"content-security-policy":
                has_csp = True
            elif lower == b"cache-control":
                has_cache_control = True
            out.append((name, value))
        out.append((_REQUEST_ID, request_id.encode("latin-1")))
        out.extend(self.static_headers)
        if not has_csp:
            out.append((b"content-security-policy", csp))
        if not has_cache_control:
            out.append((b"cache-control", b"no-store"))
        return out
