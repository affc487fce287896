"""The application factory. Importing this module does no I/O and never imports onnxruntime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components
from litestar.plugins import PluginProtocol
from litestar.plugins.prometheus import PrometheusController
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler
from redis.asyncio import Redis
from taskiq import AsyncBroker

from api.auth import BearerAuthMiddleware, provide_principal
from api.catalog.controllers import CatalogController, VendorsController
from api.dependencies import (
    provide_client_info,
    provide_db_session,
    provide_read_session,
    provide_replica_session,
    provide_resources,
)
from api.errors import exception_handlers
from api.fit.controllers import FitController
from api.fulfilment.controllers import StaffFulfilmentsController, VendorFulfilmentsController
from api.health.controllers import HealthController
from api.identity.controllers import AuthController, MeController
from api.ledger.controllers import RevenueReportController, VendorStatementController
from api.measurements.controllers import MeasurementsController
from api.metrics import serve_metrics
from api.middleware import RequestContextMiddleware
from api.notifications.controllers import NotificationsController
from api.openapi import SECURITY_SCHEMES, document_problems
from api.orders.controllers import CartController, OrdersController
from api.page_cache import PageCache
from api.payments.controllers import SandboxCheckoutController, WebhooksController
from api.payouts.controllers import StaffPayoutsController, VendorPayoutsController
from api.resources import AppResources, CategoryCache
from api.returns.controllers import OrderReturnsController, VendorReturnsController
from api.reviews.controllers import ReviewsController
from api.seller.controllers import VendorStoreController
from api.seller.orders import VendorOrdersController
from api.shipping.controllers import CartShippingController, ShippingProfileController
from api.staff.controllers import StaffController
from api.staff.jobs import StaffJobsController
from api.staff.orders import StaffOrdersController
from api.standing import StandingCache
from api.vouchers.controllers import CartVoucherController, StaffVouchersController, VendorVouchersController
from api.wishlist.controllers import WishlistController
from core.adapters.passwords import PasswordHasher
from core.adapters.payments import PaymentProvider, build_payment_provider
from core.adapters.ratelimit import RateLimiter
from core.adapters.standing import StandingNotices
from core.adapters.storage import MEDIA_MAX_AGE_SECONDS, build_private_storage, build_storage
from core.adapters.telemetry import (
    build_tracer_provider,
    instrument_engine,
    litestar_plugin,
    taskiq_middleware,
)
from core.adapters.tokens import TokenSigner
from core.events import get_event_bus
from core.jobs import Dispatcher
from core.logging import configure_logging, get_logger
from core.page_versions import PageVersions
from core.settings import Settings, get_settings
from db.engine import Database, create_database
from db.replica import Fences
from db.services.catalog.ranked_search import RankedSearches
from db.services.subscribers import register_all
from tasks.runtime.dispatch import BrokerDispatcher
from tasks.runtime.factory import build_broker, redis_url_for

log = get_logger(__name__)

API_PREFIX = "/api/v1"
# Every media key names one upload (a fresh image id per upload, thumbnails made once under it),
# so what a URL serves never changes.
MEDIA_CACHE_CONTROL = CacheControlHeader(public=True, max_age=MEDIA_MAX_AGE_SECONDS, immutable=True)


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def _build_resources(
    settings: Settings,
    database: Database | None,
    redis: Redis | None,
    broker: AsyncBroker | None,
    dispatcher: Dispatcher | None,
    payments: PaymentProvider | None,
) -> AppResources:
    owned: set[str] = set()
    if database is None:
        database = create_database(settings, "api")
        owned.add("db")
    if redis is None:
        redis = Redis.from_url(
            redis_url_for(settings),
            socket_timeout=settings.redis_socket_timeout_seconds,
            socket_connect_timeout=settings.redis_socket_timeout_seconds,
        )
        owned.add("redis")
    if broker is None:
        broker = build_broker(settings)
        owned.add("broker")
    if payments is None:
        payments = build_payment_provider(settings)
        owned.add("payments")
    if database.replica is not None:
        database.replica.attach_fences(Fences(redis, settings.database_replica_fence_seconds))
    standing = StandingCache(database)
    versions = PageVersions(redis)
    return AppResources(
        settings=settings,
        db=database,
        redis=redis,
        broker=broker,
        dispatcher=dispatcher or BrokerDispatcher(broker),
        hasher=PasswordHasher(settings.password_hash_concurrency),
        limiter=RateLimiter(redis),
        signer=TokenSigner(settings),
        storage=build_storage(settings),
        private_storage=build_private_storage(settings),
        categories=CategoryCache(database),
        payments=payments,
        versions=versions,
        pages=PageCache(max_pages=settings.page_cache_max_pages),
        searches=RankedSearches(versions),
        standing=standing,
        notices=StandingNotices(redis, local=standing.forget),
        owned=owned,
    )


def _lifespan(
    settings: Settings,
    database: Database | None,
    redis: Redis | None,
    broker: AsyncBroker | None,
    dispatcher: Dispatcher | None,
    payments: PaymentProvider | None,
    tracer_provider: Any | None,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app's lifespan: build the resources on startup, close the ones it built on shutdown."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        resources = _build_resources(settings, database, redis, broker, dispatcher, payments)
        if tracer_provider is not None:
            instrument_engine(resources.db.engine, tracer_provider)
            if "broker" in resources.owned:
                resources.broker.add_middlewares(taskiq_middleware(tracer_provider))
        app.state.resources = resources
        metrics = serve_metrics(settings)
        resources.start_listening()
        log.info("api started", settings=settings.safe_summary())
        try:
            yield
        finally:
            if metrics is not None:
                await anyio.to_thread.run_sync(metrics.close)
            await resources.close()
            log.info("api stopped")

    return lifespan


def _route_handlers(settings: Settings) -> list[ControllerRouterHandler]:
    """Health and metrics at the root, the domains under ``API_PREFIX``, local media if served."""
    api_v1 = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController,
            MeController,
            NotificationsController,
            StaffController,
            StaffOrdersController,
            StaffJobsController,
            RevenueReportController,
            StaffVouchersController,
            CatalogController,
            VendorsController,
            VendorStoreController,
            VendorOrdersController,
            VendorVouchersController,
            ShippingProfileController,
            VendorReturnsController,
            VendorStatementController,
            VendorFulfilmentsController,
            StaffFulfilmentsController,
            VendorPayoutsController,
            StaffPayoutsController,
            FitController,
            CartController,
            CartShippingController,
            CartVoucherController,
            OrdersController,
            OrderReturnsController,
            WebhooksController,
            *([SandboxCheckoutController] if settings.payment_provider == "sandbox" else []),
            ReviewsController,
            WishlistController,
            # Two photos in one request: their own body limit, larger than the app's.
            Router(
                path="/",
                route_handlers=[MeasurementsController],
                request_max_body_size=settings.measurement_request_max_bytes,
            ),
        ],
    )
    media = (
        [
            create_static_files_router(
                path="/media",
                directories=[settings.media_dir],
                include_in_schema=False,
                cache_control=MEDIA_CACHE_CONTROL,
            )
        ]
        if settings.media_backend == "local"
        else []
    )
    # With a metrics port of their own (production), the public port has no /metrics at all.
    metrics = [MetricsController] if settings.api_metrics_port <= 0 else []
    return [HealthController, *metrics, api_v1, *media]


def _dependencies() -> dict[str, Provide]:
    return {
        "resources": Provide(provide_resources, sync_to_thread=False),
        # Resolved only by handlers that ask for it: one unit of work per request.
        "db_session": Provide(provide_db_session),
        # Read-only handlers: statements without a transaction around them.
        "read_session": Provide(provide_read_session),
        # Catalog reads and vector searches in a transaction (SET LOCAL): on the replica if any.
        "replica_session": Provide(provide_replica_session),
        "client": Provide(provide_client_info, sync_to_thread=False),
        "principal": Provide(provide_principal, sync_to_thread=False),
    }


def _cors_config(settings: Settings) -> CORSConfig | None:
    """CORS headers only when origins are configured; with none, the API serves same-origin clients."""
    if not settings.cors_allow_origins:
        return None
    return CORSConfig(
        allow_origins=settings.cors_allow_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Location", "Retry-After"],
        max_age=600,
    )


def _openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Fashionistar API",
        version="1.0.0",
        description="Multi-vendor fashion marketplace: catalog, fit, similarity and commerce.",
        path="/schema",
        render_plugins=[ScalarRenderPlugin()],
        components=Components(security_schemes=SECURITY_SCHEMES),
    )


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    redis: Redis | None = None,
    broker: AsyncBroker | None = None,
    dispatcher: Dispatcher | None = None,
    payments: PaymentProvider | None = None,
    tracer_provider: Any | None = None,
    plugins: Sequence[PluginProtocol] = (),
) -> Litestar:
    """Build the API. Resources passed in (tests) are used as given and not closed on shutdown.

    ``tracer_provider`` overrides the one built from ``OTEL_EXPORTER_OTLP_ENDPOINT``; ``plugins``
    are added to the app's (the ``litestar`` command's app adds its commands this way: ``app.py``).
    """
    settings = settings or get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, process="api")
    # Subscribers defer the jobs that follow a change (order mail, notices); registering again
    # adds nothing, so building many apps in one process (tests) is harmless.
    register_all(get_event_bus())
    tracer_provider = tracer_provider or build_tracer_provider(settings, "api")
    lifespan = _lifespan(settings, database, redis, broker, dispatcher, payments, tracer_provider)
    app = Litestar(
        route_handlers=_route_handlers(settings),
        dependencies=_dependencies(),
        lifespan=[lifespan],
        middleware=[lambda app: BearerAuthMiddleware(app, settings)],
        exception_handlers=exception_handlers,
        plugins=[*([litestar_plugin(tracer_provider)] if tracer_provider is not None else []), *plugins],
        cors_config=_cors_config(settings),
        openapi_config=_openapi_config(),
        request_max_body_size=settings.max_request_body_bytes,
        debug=False,  # never render tracebacks into responses, whatever the environment
        logging_config=None,
    )
    # Route middleware never sees requests that match no route (404/405 are answered by the
    # exception layer around the router), so the request-id / security-header middleware wraps
    # the app's outermost ASGI handler instead: every response gets them, errors included.
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler, settings)
    document_problems(app)
    return app
