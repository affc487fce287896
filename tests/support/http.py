"""An HTTP client that drives the real ASGI app in the test's own event loop.

Litestar's ``AsyncTestClient`` runs the app's lifespan in a separate thread and loop, which
breaks resources shared with the test (pooled database connections). This runs the ASGI
lifespan protocol in-loop and talks to the app through httpx's ASGI transport.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from litestar import Litestar


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of ``response``, after checking its status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


@contextlib.asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    to_app_send, to_app_receive = anyio.create_memory_object_stream[dict[str, Any]](8)
    from_app_send, from_app_receive = anyio.create_memory_object_stream[dict[str, Any]](8)
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    async with anyio.create_task_group() as tg:
        asgi: Any = app  # Litestar's precise ASGI types do not unify with anyio's/httpx's
        tg.start_soon(asgi, scope, to_app_receive.receive, from_app_send.send)
        await to_app_send.send({"type": "lifespan.startup"})
        started = await from_app_receive.receive()
        if started["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"app failed to start: {started}")
        transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield client
        finally:
            await to_app_send.send({"type": "lifespan.shutdown"})
            await from_app_receive.receive()
