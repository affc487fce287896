"""HTTP caching of public catalog pages: ETag, Cache-Control, 304, and an in-process page cache.

A route that opts in (``middleware=[public_page(...)]``) names the page-version counters its
answer depends on (``core.page_versions``). Per GET request the middleware reads those counters
from Redis (one MGET) and looks the page up in this process's cache under the request's path and
query; a page stored under the same counter values is answered without running the handler, a
304 when the client's ``If-None-Match`` names its ETag. Otherwise the handler runs and its 200
is stored under the counter values read *before* it ran: a write commits before it bumps, so the
stored body is never older than the versions it is filed under. With a read replica that alone
is not enough (the replica may not have replayed the write yet): the versions are read with the
WAL position the last bump stored, and the handler's replica reads must be at or past it
(db/replica.py), else they run on the primary.

The ETag is a hash of the body, so two processes that built the same page give the same tag and
a 304 is only ever an answer for identical bytes. Answers the handler marked itself (any
``Cache-Control``, e.g. a vendor's own unlisted product) and everything but 200 pass through
untouched (the request middleware then marks them ``no-store``). If Redis cannot be read the
page is built and sent uncached, ``no-store``. With the cache sized to nothing
(``PAGE_CACHE_MAX_PAGES=0``) no counter is read: the page is built, tagged and answered (304
included) per request.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.openapi.datastructures import ResponseSpec
from redis.exceptions import RedisError

from core.page_versions import CATALOG, REVIEWERS, SHARED, product_key
from db.replica import reading_from

if TYPE_CHECKING:
    from litestar.types import (
        ASGIApp,
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        Message,
        Receive,
        Scope,
        Send,
    )

    from api.resources import AppResources

# Browsers and CDNs may reuse a page for 30 s and serve it stale for 5 minutes while they
# revalidate it (a 304 costs one Redis round trip and no database work).
PUBLIC_CACHE_CONTROL = b"public, max-age=30, stale-while-revalidate=300"
# The answer is the same for every caller; only a compressing proxy in front makes it vary.
PUBLIC_VARY = b"Accept-Encoding"
# What a handler sends for an answer that depends on who asks (passed through, never stored).
PERSONAL = {"cache-control": "private, no-store"}
MAX_PAGES = 4096
MAX_BYTES = 32 * 1024 * 1024
# A cached page is rebuilt after a minute even if no counter moved: a bump lost to a Redis
# outage or a crash between commit and bump leaves a page stale for a minute at most.
PAGE_SECONDS = 60.0
# Longer queries are served uncached rather than filling the cache with one-off keys.
_MAX_QUERY = 512


@dataclass(frozen=True, slots=True)
class Page:
    versions: tuple[int, ...]
    etag: bytes
    body: bytes
    content_type: bytes
    stored_at: float


class PageCache:
    """Encoded public pages, least recently used first out, bounded in count and bytes."""

    def __init__(self, *, max_pages: int = MAX_PAGES, max_bytes: int = MAX_BYTES) -> None:
        self._pages: OrderedDict[str, Page] = OrderedDict()
        self._bytes = 0
        self._max_pages = max_pages
        self._max_bytes = max_bytes

    def get(self, key: str, versions: tuple[int, ...]) -> Page | None:
        page = self._pages.get(key)
        if page is None:
            return None
        if page.versions != versions or time.monotonic() - page.stored_at > PAGE_SECONDS:
            self._drop(key)
            return None
        self._pages.move_to_end(key)
        return page

    def put(self, key: str, page: Page) -> None:
        if len(page.body) > self._max_bytes // 8:
            return
        self._drop(key)
        self._pages[key] = page
        self._bytes += len(page.body)
        while len(self._pages) > self._max_pages or self._bytes > self._max_bytes:
            self._drop(next(iter(self._pages)))

    def __len__(self) -> int:
        return len(self._pages)

    @property
    def enabled(self) -> bool:
        """False when sized to hold nothing (``PAGE_CACHE_MAX_PAGES=0``)."""
        return self._max_pages > 0 and self._max_bytes > 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def _drop(self, key: str) -> None:
        page = self._pages.pop(key, None)
        if page is not None:
            self._bytes -= len(page.body)


def etag_of(body: bytes) -> bytes:
    """A strong ETag: a hash of the exact bytes."""
    digest = hashlib.blake2b(body, digest_size=12).digest()
    return b'"' + base64.urlsafe_b64encode(digest) + b'"'


def none_match(header: bytes | None, etag: bytes) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (RFC 9110 13.1.2: ``*``, a list, weak
    comparison, so ``W/"x"`` matches ``"x"``)."""
    if header is None:
        return False
    value = header.strip()
    if value == b"*":
        return True
    for part in value.split(b","):
        tag = part.strip()
        if tag.startswith(b"W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _cache_key(scope: Scope) -> str | None:
    query: bytes = scope.get("query_string", b"")
    if len(query) > _MAX_QUERY:
        return None
    path: str = scope["path"]
    if not query:
        return path
    # The same page for ?a=1&b=2 and ?b=2&a=1.
    pairs = sorted(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    return f"{path}?{urlencode(pairs)}"


def _request_header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _answer(page: Page, scope: Scope, send: Send) -> None:
    """The page as a 200, or a 304 when the client already has it."""
    common = [(b"etag", page.etag), (b"cache-control", PUBLIC_CACHE_CONTROL), (b"vary", PUBLIC_VARY)]
    if none_match(_request_header(scope, b"if-none-match"), page.etag):
        await send(_start(304, common))
        await send(_body(b""))
        return
    headers = [
        (b"content-type", page.content_type),
        (b"content-length", str(len(page.body)).encode("latin-1")),
        *common,
    ]
    await send(_start(200, headers))
    await send(_body(page.body))


def _start(status: int, headers: list[tuple[bytes, bytes]]) -> HTTPResponseStartEvent:
    return {"type": "http.response.start", "status": status, "headers": headers}


def _body(body: bytes) -> HTTPResponseBodyEvent:
    return {"type": "http.response.body", "body": body, "more_body": False}


VersionKeys = Callable[[dict[str, Any]], Sequence[str]]


class PublicPageMiddleware:
    """See the module docstring; ``version_keys`` maps the route's path parameters to the
    counters its answer depends on."""

    def __init__(self, app: ASGIApp, version_keys: VersionKeys) -> None:
        self.app = app
        self.version_keys = version_keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = None
        if scope["type"] == ScopeType.HTTP and scope["method"] == "GET":
            key = _cache_key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        resources: AppResources = Litestar.from_scope(scope).state.resources
        if not resources.pages.enabled:
            # Nothing is stored, so the versions would file nothing: ETag and 304 only.
            await self._build(scope, receive, send, None)
            return
        keys = self.version_keys(scope.get("path_params") or {})
        position = None
        try:
            if resources.db.replica is None:
                versions = await resources.versions.read(keys)
            else:
                versions, position = await resources.versions.read_with_position(keys)
        except (RedisError, OSError):
            await self.app(scope, receive, send)
            return
        page = resources.pages.get(key, versions)
        if page is not None:
            await _answer(page, scope, send)
            return
        if position is not None:
            # Built from a replica, the page must hold the writes its versions count.
            with reading_from(position):
                await self._build(scope, receive, send, (resources, key, versions))
            return
        await self._build(scope, receive, send, (resources, key, versions))

    async def _build(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        filing: tuple[AppResources, str, tuple[int, ...]] | None,
    ) -> None:
        """Run the handler; store its answer under ``filing`` (key and versions) if it may be
        (None: answer it as a cacheable page, store nothing)."""
        starts: list[HTTPResponseStartEvent] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                starts.append(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if not starts:
            return
        body = b"".join(chunks)
        page = _storable(starts[0], body, filing[2] if filing else ())
        if page is None:
            await send(starts[0])
            await send(_body(body))
            return
        if filing is not None:
            filing[0].pages.put(filing[1], page)
        await _answer(page, scope, send)


def _storable(start: HTTPResponseStartEvent, body: bytes, versions: tuple[int, ...]) -> Page | None:
    """The handler's answer as a cacheable page, or None: not a 200, or the handler chose its
    own caching (a personal answer)."""
    if start["status"] != 200:
        return None
    content_type = b"application/json"
    for name, value in start.get("headers") or ():
        lower = name.lower()
        if lower == b"cache-control":
            return None
        if lower == b"content-type":
            content_type = value
    return Page(versions, etag_of(body), body, content_type, time.monotonic())


def public_page(version_keys: VersionKeys) -> Callable[[ASGIApp], ASGIApp]:
    """Route middleware that caches the route's answers against ``version_keys``."""

    def middleware(app: ASGIApp) -> ASGIApp:
        return PublicPageMiddleware(app, version_keys)

    return middleware


# For the OpenAPI document of every route above.
NOT_MODIFIED = {
    304: ResponseSpec(
        data_container=None,
        description="Not modified: `If-None-Match` names the page's current `ETag` (no body).",
    )
}

# The routes' counters: listings of any shape follow the whole catalog; a product's page and its
# reviews follow that product and what product pages share (store names and status); reviews
# also follow their authors' names.
catalog_page = public_page(lambda _: (CATALOG,))
product_page = public_page(lambda params: (SHARED, product_key(params["product_id"])))
reviews_page = public_page(lambda params: (SHARED, REVIEWERS, product_key(params["product_id"])))
