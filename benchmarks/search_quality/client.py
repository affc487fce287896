"""A minimal HTTP/1.1 keep-alive GET client for the open-loop load.

Why not httpx: on a 2-core machine the load generator shares a core with PostgreSQL, and
httpx's per-request CPU cost (several times this client's, compared on GET /health/live at
300 req/s while writing this) is CPU the database does not get and lag the latencies then
include. This client does one thing, requests with small JSON answers over a pool of persistent
connections (GET mostly; POST bodies are sent as given, with their Content-Length). It
understands ``Content-Length`` and chunked bodies, and 204/304 answers without one; anything
else is an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import msgspec

# Answers that never have a body, whatever their headers say (a 304 may carry no Content-Length).
_NO_BODY = frozenset({204, 304})


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 this client understands."""


@dataclass(frozen=True)
class Response:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:  # a JSON document of any shape
        return msgspec.json.decode(self.content)


def _chunked(data: bytearray, start: int) -> tuple[bytes, int] | None:
    """The body of a complete chunked message starting at ``start`` and where it ends, or None."""
    body, at = bytearray(), start
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(data[at:line_end]).split(b";")[0], 16)
        at = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n", at)
            return None if trailer_end < 0 else (bytes(body), trailer_end + 2)
        if len(data) < at + size + 2:
            return None
        body += data[at : at + size]
        at += size + 2


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[Response, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            parsed = self._parse()
        except (ValueError, IndexError) as exc:
            self.waiter.set_exception(HttpError(f"malformed response: {exc}"))
            return
        if parsed is not None:
            self.waiter.set_result(parsed)

    def _parse(self) -> tuple[Response, bool] | None:
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        lines = bytes(self.buffer[:head_end]).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = head_end + 4
        if status in _NO_BODY or 100 <= status < 200:  # RFC 9112 6.3: never a body
            end, body = start, b""
        elif "content-length" in headers:
            end = start + int(headers["content-length"])
            if len(self.buffer) < end:
                return None
            body = bytes(self.buffer[start:end])
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            found = _chunked(self.buffer, start)
            if found is None:
                return None
            body, end = found
        else:
            raise ValueError("neither Content-Length nor chunked")
        del self.buffer[:end]
        keep = headers.get("connection", "").lower() != "close"
        return Response(status, headers, body), keep

    async def request(self, raw: bytes) -> tuple[Response, bool]:
        if self.transport is None or self.closed:
            raise HttpError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


class LoadClient:
    """GETs over up to ``max_connections`` persistent connections to one host."""

    def __init__(self, base_url: str, *, max_connections: int = 256, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._all: set[_Connection] = set()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Connection, self.host, self.port)
        self._all.add(protocol)
        return protocol

    async def get(
        self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        """Raises HttpError (connection trouble, malformed answer) or TimeoutError."""
        return await self.request("GET", path, params=params, headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """Any method; a ``body`` is sent with its Content-Length (its Content-Type goes in
        ``headers``). Raises HttpError (connection trouble, malformed answer) or TimeoutError."""
        target = f"{path}?{urlencode(params)}" if params else path
        fields = dict(headers or {})
        if body is not None:
            fields["Content-Length"] = str(len(body))
        extra = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}\r\n".encode("latin-1")
        raw = head + body if body is not None else head
        async with self._slots:
            connection = self._idle.pop() if self._idle else None
            while connection is not None and connection.closed:  # the server closed it while idle
                self._close(connection)
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                connection = await self._open()
            try:
                async with asyncio.timeout(self.timeout):
                    response, keep = await connection.request(raw)
            except BaseException:
                self._close(connection)
                raise
            if keep and not connection.closed:
                self._idle.append(connection)
            else:
                self._close(connection)
            return response

    def _close(self, connection: _Connection) -> None:
        self._all.discard(connection)
        if connection.transport is not None:
            connection.transport.close()

    async def aclose(self) -> None:
        for connection in list(self._all):
            self._close(connection)
        self._idle.clear()
