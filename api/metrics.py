"""HTTP metrics for Prometheus, recorded by the request middleware (api/middleware.py).

The series are those of Litestar's Prometheus plugin (``fashionistar_requests_total``,
``..._request_duration_seconds``, ``..._requests_error_total``, ``..._requests_in_progress``),
labelled by method, route template (``/api/v1/products/{product_id}``; ``unmatched`` for
paths no route serves, so made-up URLs cannot grow the label set), status code and app name.
Recorded in the outermost middleware, where the status of every answer is known (errors and
routing failures included), at a fraction of the plugin's cost per request: label children are
looked up once per (method, route, status) and reused.

Where they are served: with ``API_METRICS_PORT`` 0 (dev, test) at ``GET /metrics`` on the API's
port; with a port (production's default), only on that port (:func:`serve_metrics`, started by
the app's lifespan), which the network policy opens to the monitoring namespace alone, while
``/metrics`` on the public port is no route at all (404). One granian worker per pod, as the
manifests run it, holds the port; a second worker process on one host finds it taken, logs it
and serves the API without metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

from core.logging import get_logger
from core.settings import Settings

log = get_logger(__name__)

APP_NAME = "fashionistar"
_LABELS = ("method", "path", "status_code", "app_name")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Module level: the default registry accepts each name once per process, however many apps
# a process builds (tests build many).
_REQUESTS = Counter(f"{APP_NAME}_requests", "Total requests", _LABELS)
_ERRORS = Counter(f"{APP_NAME}_requests_error", "Total errors in requests", _LABELS)
_DURATION = Histogram(f"{APP_NAME}_request_duration_seconds", "Request duration, in seconds", _LABELS)
_IN_PROGRESS = Gauge(
    f"{APP_NAME}_requests_in_progress", "Total requests currently in progress", ("method", "app_name")
)


class _Series:
    __slots__ = ("duration", "errors", "requests")

    def __init__(self, labels: tuple[str, str, str, str]) -> None:
        self.requests = _REQUESTS.labels(*labels)
        self.duration = _DURATION.labels(*labels)
        self.errors = _ERRORS.labels(*labels) if int(labels[2]) >= 500 else None


class HttpMetrics:
    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._in_progress: dict[str, Gauge] = {}

    def in_progress(self, method: str) -> Gauge:
        method = method if method in _METHODS else "OTHER"
        gauge = self._in_progress.get(method)
        if gauge is None:
            gauge = self._in_progress[method] = _IN_PROGRESS.labels(method, APP_NAME)
        return gauge

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        key = (method if method in _METHODS else "OTHER", route or "unmatched", status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series((key[0], key[1], str(status), APP_NAME))
        series.requests.inc()
        series.duration.observe(seconds)
        if series.errors is not None:
            series.errors.inc()


@dataclass
class MetricsServer:
    server: WSGIServer
    url: str

    def close(self) -> None:
        """Stop serving (blocks up to half a second: run it in a thread from async code)."""
        self.server.shutdown()
        self.server.server_close()


def serve_metrics(settings: Settings) -> MetricsServer | None:
    """Serve the process's metrics on ``API_METRICS_PORT``; None when it is 0 (they are a route of
    the app then) or the port is taken (logged; the API runs on without them)."""
    if settings.api_metrics_port <= 0:
        return None
    try:
        server, _ = start_http_server(
            settings.api_metrics_port, addr=settings.api_metrics_host, registry=REGISTRY
        )
    except OSError as exc:
        log.warning(
            "api metrics not served: the port is taken", port=settings.api_metrics_port, error=str(exc)
        )
        return None
    url = f"http://{settings.api_metrics_host}:{settings.api_metrics_port}/metrics"
    log.info("api metrics served", url=url)
    return MetricsServer(server=server, url=url)
