"""OpenTelemetry tracing for HTTP, SQL and tasks: off unless an exporter is configured.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set (and the ``otel`` extra installed) each process builds
a tracer provider that exports over OTLP/HTTP; the API adds Litestar's ASGI instrumentation,
both processes instrument their SQLAlchemy engine, and the taskiq middleware carries the trace
context from the sending process into the task through message labels. Without the variable
nothing of OpenTelemetry is imported, so it costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class TracingUnavailable(RuntimeError):
    """Tracing was configured but the ``otel`` extra is not installed."""


def build_tracer_provider(settings: Settings, process: str, *, exporter: Any = None) -> Any | None:
    """A tracer provider for ``process``, or None when tracing is off.

    ``exporter`` replaces the OTLP exporter (tests pass an in-memory one).

    Raises:
        TracingUnavailable: the endpoint is set but OpenTelemetry packages are missing.
    """
    if exporter is None and not settings.otel_exporter_otlp_endpoint:
        return None
    try:
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            SimpleSpanProcessor,
        )
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise TracingUnavailable("install the 'otel' extra to export traces") from exc

    resource = Resource.create(
        {
            "service.name": f"{settings.otel_service_name}-{process}",
            "deployment.environment": settings.app_env,
        }
    )
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        endpoint = (settings.otel_exporter_otlp_endpoint or "").rstrip("/")
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def instrument_engine(engine: AsyncEngine, tracer_provider: Any) -> None:
    """Emit a span per SQL statement run on ``engine``."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor  # noqa: PLC0415

    # skip_dep_check: the instrumentation pins SQLAlchemy < 2.1 in its metadata but works with the
    # event API of 2.1, which the tracing test checks.
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, tracer_provider=tracer_provider, skip_dep_check=True
    )


def litestar_plugin(tracer_provider: Any) -> Any:
    """Litestar's ASGI tracing plugin bound to ``tracer_provider``."""
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin  # noqa: PLC0415

    return OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=tracer_provider))


def taskiq_middleware(tracer_provider: Any) -> Any:
    """taskiq's middleware: a span per task, trace context carried in the message labels."""
    from taskiq.middlewares.opentelemetry_middleware import OpenTelemetryMiddleware  # noqa: PLC0415

    return OpenTelemetryMiddleware(tracer_provider=tracer_provider)
