"""Liveness and readiness probes (no ``/api/v1`` prefix; used by Kubernetes and the dev stack)."""

from __future__ import annotations

import asyncio

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from sqlalchemy import text

from api.health.schemas import CheckStatus, Liveness, Readiness
from api.resources import AppResources
from core.logging import get_logger
from db.migrate import is_current

log = get_logger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0


async def _check_database(resources: AppResources) -> tuple[CheckStatus, CheckStatus]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), resources.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            migrations: CheckStatus = "ok" if await is_current(conn) else "outdated"
    except Exception as exc:  # any failure means "not ready"
        log.warning("readiness: database check failed", error=repr(exc)[:300])
        return "failing", "failing"
    return "ok", migrations


async def _check_redis(resources: AppResources) -> CheckStatus:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await resources.redis.ping()
    except Exception as exc:
        log.warning("readiness: redis check failed", error=repr(exc)[:300])
        return "failing"
    return "ok"


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]
    include_in_schema = True

    @get("/live", summary="The process is up", cache=False)
    async def live(self) -> Liveness:
        return Liveness()

    @get(
        "/ready",
        summary="Database, Redis and migrations are usable",
        description="200 when every check is `ok`; 503 with `Retry-After` otherwise.",
        cache=False,
        responses={503: ResponseSpec(data_container=Readiness, description="A dependency is not usable")},
    )
    async def ready(self, state: State) -> Response[Readiness]:
        resources: AppResources = state.resources
        (database, migrations), redis = await asyncio.gather(
            _check_database(resources), _check_redis(resources)
        )
        checks: dict[str, CheckStatus] = {"database": database, "migrations": migrations, "redis": redis}
        ok = all(v == "ok" for v in checks.values())
        return Response(
            Readiness(status="ready" if ok else "unavailable", checks=checks),
            status_code=200 if ok else 503,
            headers=None if ok else {"Retry-After": "5"},
        )
