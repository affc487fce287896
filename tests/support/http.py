"""An HTTP client that drives the real ASGI app in the test's own event loop.

Litestar's ``AsyncTestClient`` runs the app's lifespan in a separate thread and loop, which
breaks resources shared with the test (pooled database connections). This runs the ASGI
lifespan protocol in-loop and talks to the app through httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
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


class _SettledASGITransport(httpx.ASGITransport):
    """Returns a response once the tasks its request left behind have finished.

    When a dependency refuses a request (a vendor route's store lookup: 403), Litestar does not
    close the generator dependencies resolved before it, so the request's unit of work is rolled
    back by the event loop's async-generator finalizer, in a task of its own, after the response.
    In production that task works on its own pooled connection; here every session shares the
    test's one connection, so the next request must not start while it still runs.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        before = asyncio.all_tasks()
        response = await super().handle_async_request(request)
        await asyncio.sleep(0)  # let finalizers scheduled at the response's end create their tasks
        left = asyncio.all_tasks() - before - {asyncio.current_task()}
        if left:
            await asyncio.wait(left, timeout=5)
        return response


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
        transport = _SettledASGITransport(app=asgi, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield client
        finally:
            await to_app_send.send({"type": "lifespan.shutdown"})
            await from_app_receive.receive()
