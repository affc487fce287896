"""The HTTP skeleton: health, errors as problem+json, request ids, headers, limits, logs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody, RawBody
from redis.asyncio import Redis

from core.logging import configure_logging
from core.settings import Settings, load_settings
from devstack.embedded_redis import EmbeddedRedis
from devstack.services import free_port
from tests.support.http import serve
from tests.support.stack import ROOT

pytestmark = pytest.mark.anyio


class Sample(msgspec.Struct):
    name: str
    quantity: int


@post("/api/v1/_test/echo")
async def echo(data: JSONBody[Sample]) -> Sample:
    return data


@post("/api/v1/_test/boom")
async def boom() -> None:
    raise RuntimeError("secret internal detail")


@post("/api/v1/_test/upload")
async def upload(body: RawBody) -> dict[str, int]:
    return {"size": len(body)}


def _with_test_routes(app: Litestar) -> Litestar:
    for handler in (echo, boom, upload):
        app.register(handler)
    return app


def _assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "request_id"} <= body.keys()
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    live = await client.get("/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
    }


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/health/live", headers={"X-Request-ID": "req-1234567890"})
    assert echoed.headers["x-request-id"] == "req-1234567890"
    generated = await client.get("/health/live")
    assert len(generated.headers["x-request-id"]) == 32
    # An unsafe incoming id (header injection, absurd length) is replaced, not echoed.
    unsafe = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


async def test_request_id_is_in_the_json_log_line(
    make_app: Callable[..., Litestar], settings: Settings
) -> None:
    stream = io.StringIO()
    app = make_app(settings=msgspec.structs.replace(settings, log_level="INFO", log_format="json"))
    configure_logging(level="INFO", fmt="json", process="api", stream=stream)
    try:
        async with serve(app) as client:
            response = await client.get("/api/v1/nothing-here", headers={"X-Request-ID": "trace-abcdef123"})
    finally:
        configure_logging(level=settings.log_level, fmt="json")
    assert response.status_code == 404
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "request"]
    assert access, stream.getvalue()
    assert access[-1]["request_id"] == "trace-abcdef123"
    assert access[-1]["status"] == 404
    assert access[-1]["path"] == "/api/v1/nothing-here"
    # Written by its own short path, the access line has what every other line has.
    other = next(line for line in lines if line.get("event") == "api started")
    common = {"event", "level", "logger", "timestamp", "process"}
    assert common <= set(other)
    assert common <= set(access[-1])
    assert access[-1]["level"] == "info"
    assert access[-1]["logger"] == "api.access"
    assert access[-1]["process"] == "api"
    assert access[-1]["timestamp"].endswith("Z")
    assert access[-1]["timestamp"][:13] == other["timestamp"][:13]


async def test_security_headers_on_every_response(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/health/live"), await client.get("/no/such/route")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_404_and_405_are_problems(client: httpx.AsyncClient) -> None:
    _assert_problem(await client.get("/api/v1/does-not-exist"), 404)
    _assert_problem(await client.post("/health/live"), 405)


async def test_422_names_the_fields(make_app: Callable[..., Litestar]) -> None:
    async with serve(_with_test_routes(make_app())) as client:
        ok = await client.post("/api/v1/_test/echo", json={"name": "a", "quantity": 2})
        assert ok.status_code == 201, ok.text
        wrong_type = _assert_problem(
            await client.post("/api/v1/_test/echo", json={"name": "a", "quantity": "many"}), 422
        )
        assert wrong_type["errors"][0]["field"] == "quantity"
        missing = _assert_problem(await client.post("/api/v1/_test/echo", json={"name": "a"}), 422)
        assert "quantity" in json.dumps(missing["errors"])
        malformed = _assert_problem(
            await client.post(
                "/api/v1/_test/echo", content=b'{"name": "a",', headers={"content-type": "application/json"}
            ),
            400,
        )
        assert "JSON" in malformed["detail"]


async def test_500_hides_the_error(make_app: Callable[..., Litestar]) -> None:
    async with serve(_with_test_routes(make_app())) as client:
        body = _assert_problem(await client.post("/api/v1/_test/boom"), 500)
        assert "secret internal detail" not in json.dumps(body)


async def test_body_over_the_limit_is_413(make_app: Callable[..., Litestar], settings: Settings) -> None:
    small = msgspec.structs.replace(settings, max_request_body_bytes=1024)
    async with serve(_with_test_routes(make_app(settings=small))) as client:
        ok = await client.post("/api/v1/_test/upload", content=b"x" * 1000)
        assert ok.status_code == 201
        assert ok.json() == {"size": 1000}
        _assert_problem(await client.post("/api/v1/_test/upload", content=b"x" * 5000), 413)


async def test_ready_is_503_when_redis_is_down(make_app: Callable[..., Litestar], tmp_path: Any) -> None:
    own = EmbeddedRedis(tmp_path / "redis", free_port(), persistent=False)
    own.start()
    client_redis = Redis.from_url(own.url, socket_timeout=1, socket_connect_timeout=1)
    try:
        async with serve(make_app(redis=client_redis)) as client:
            assert (await client.get("/health/ready")).status_code == 200
            own.stop()
            down = await client.get("/health/ready")
            assert down.status_code == 503
            assert down.headers["retry-after"] == "5"
            assert down.json()["checks"]["redis"] == "failing"
            assert down.json()["checks"]["database"] == "ok"
    finally:
        own.stop()
        await client_redis.aclose()


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["info"]["title"] == "Fashionistar API"
    assert "/health/ready" in doc["paths"]


async def test_with_a_metrics_port_metrics_are_served_there_and_404_on_the_api_port(
    make_app: Callable[..., Litestar], settings: Settings
) -> None:
    """As production runs it (API_METRICS_PORT set): the public port has no /metrics."""
    port = free_port()
    production = msgspec.structs.replace(settings, api_metrics_port=port, api_metrics_host="127.0.0.1")
    async with serve(make_app(settings=production)) as client:
        public = await client.get("/metrics")
        assert public.status_code == 404
        assert public.headers["content-type"].startswith("application/problem+json")
        assert "fashionistar_requests_total" not in public.text
        assert (await client.get(f"/api/v1/products/{uuid.uuid4()}")).status_code == 404
        async with httpx.AsyncClient(timeout=10) as scraper:
            private = await scraper.get(f"http://127.0.0.1:{port}/metrics")
        assert private.status_code == 200
        assert 'path="/api/v1/products/{product_id}",status_code="404"' in private.text
    with pytest.raises(httpx.ConnectError):  # closed with the app
        async with httpx.AsyncClient(timeout=5) as scraper:
            await scraper.get(f"http://127.0.0.1:{port}/metrics")


async def test_metrics_count_requests_per_route(client: httpx.AsyncClient) -> None:
    """Requests are counted per route template and status; paths no route serves share one
    label, so made-up URLs cannot grow the series; probes are not counted."""

    def count(text: str, path: str, status: int) -> float:
        labels = f'app_name="fashionistar",method="GET",path="{path}",status_code="{status}"'
        prefix = f"fashionistar_requests_total{{{labels}}} "
        values = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
        return values[0] if values else 0.0

    route = "/api/v1/products/{product_id}"
    before = (await client.get("/metrics")).text
    for _ in range(2):
        assert (await client.get(f"/api/v1/products/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"/api/v1/no-such-thing-{uuid.uuid4()}")).status_code == 404
    await client.get("/health/live")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert count(text, route, 404) - count(before, route, 404) == 2
    assert count(text, "unmatched", 404) - count(before, "unmatched", 404) == 1
    assert "no-such-thing" not in text
    assert "/health/live" not in text
    assert (
        f'fashionistar_request_duration_seconds_bucket{{app_name="fashionistar",le="0.005",method="GET",path="{route}",status_code="404"}}'
        in text
    )
    assert "fashionistar_requests_in_progress" in text


def test_importing_the_app_does_not_import_onnxruntime() -> None:
    _check_in_a_fresh_api_process(
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'onnxruntime', 'inference'})\n"
        "assert not bad, bad\n"
    )


# SPEC: an API worker stays under 150 MB RSS. Building the app must leave room for serving.
API_START_RSS_BUDGET_MB = 150


def test_the_api_starts_within_its_memory_budget_without_numpy() -> None:
    """Peak RSS of a fresh process that imported and built the app, and what it must not load:
    numpy (advanced-alchemy would import it), and the HEIC decoder, Alembic and zxcvbn, which
    only image uploads, migrations and new passwords need (loaded on first use).

    The peak is the process's ``VmHWM``, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across
    ``exec`` from the forked copy of its parent, so a child of the test process would report the
    test process's size. Run from a shell, ``ru_maxrss`` gives the same figure.
    """
    _check_in_a_fresh_api_process(
        "import re\n"
        "from pathlib import Path\n"
        "status = Path('/proc/self/status').read_text()\n"
        "peak_mb = int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) / 1024\n"
        f"assert peak_mb <= {API_START_RSS_BUDGET_MB}, f'peak RSS {{peak_mb:.0f}} MB'\n"
        "heavy = {'numpy', 'onnxruntime', 'pillow_heif', 'alembic', 'zxcvbn'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not bad, bad\n"
    )


def _check_in_a_fresh_api_process(assertions: str) -> None:
    """Build the app in a new interpreter, then run ``assertions`` there."""
    code = "import sys\nfrom api.app import create_app\ncreate_app()\n" + assertions
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"APP_ENV": "test", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr


async def test_tracing_covers_http_and_sql_when_configured(make_app: Callable[..., Litestar]) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from core.adapters.telemetry import build_tracer_provider

    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(
        load_settings({"APP_ENV": "test"}, dotenv=None), "api", exporter=exporter
    )
    try:
        async with serve(make_app(tracer_provider=provider)) as client:
            assert (await client.get("/health/ready")).status_code == 200
    finally:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().uninstrument()
    names = [span.name for span in exporter.get_finished_spans()]
    assert any(name.startswith("GET /health/ready") for name in names), names
    assert any(name.startswith("SELECT") for name in names), names


def test_tracing_is_off_and_not_imported_by_default() -> None:
    _check_in_a_fresh_api_process(
        "assert 'opentelemetry.sdk.trace' not in sys.modules\n"
        "assert 'opentelemetry.instrumentation.sqlalchemy' not in sys.modules\n"
    )


async def test_cors_allows_only_configured_origins(
    make_app: Callable[..., Litestar], settings: Settings
) -> None:
    configured = msgspec.structs.replace(settings, cors_allow_origins=["https://shop.example"])
    async with serve(make_app(settings=configured)) as client:
        preflight = await client.options(
            "/health/live",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
        other = await client.get("/health/live", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
