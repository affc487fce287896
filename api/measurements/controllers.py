"""Body measurements: upload a front and a side photo, follow the worker, read the body profile."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, MultipartBody
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, current_principal, requires_user
from api.measurements import schemas
from api.measurements.present import measurement_out
from api.resources import AppResources
from db.models import Measurement
from db.models.measurement import FINISHED
from db.services.measurements import queries, uploads
from db.services.measurements.events import watch_status

RATE_BUCKET = "measurements"
RATE_WINDOW_SECONDS = 3600


async def within_upload_rate(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse (429) a user over the hourly upload limit before their photos are even read."""
    resources: AppResources = connection.app.state.resources
    principal = current_principal(connection)
    await resources.limiter.check(
        RATE_BUCKET, str(principal.user_id), limit=resources.settings.measurement_uploads_per_hour
    )


class MeasurementsController(Controller):
    path = "/"
    tags = ["measurements"]
    guards = [requires_user]

    @post(
        "/measurements",
        status_code=202,
        name="measurements:create",
        guards=[within_upload_rate],
        response_headers=[
            ResponseHeader(
                name="Location", description="Where to follow the measurement", documentation_only=True
            )
        ],
        summary="Measure your body from a front and a side photo",
        description="Multipart `front` and `side` photos (JPEG, PNG, WebP or HEIC; the whole body in "
        "view) with `height_cm` (100 to 230) and optional `weight_kg`. The measurement is `pending` "
        "until the worker is done; follow it at the `Location` given, or its `/events` stream.",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: MultipartBody[schemas.MeasurementUpload],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> Response[schemas.Measurement]:
        settings = resources.settings
        try:
            await resources.limiter.hit(
                RATE_BUCKET,
                str(principal.user_id),
                limit=settings.measurement_uploads_per_hour,
                window=RATE_WINDOW_SECONDS,
            )
            measurement = await uploads.create_measurement(
                db_session,
                resources.private_storage,
                settings,
                principal.user_id,
                front=data.front,
                side=data.side,
                height_cm=data.height_cm,
                weight_kg=data.weight_kg,
            )
        finally:
            # The spooled copies of the photos go now, not whenever they are collected.
            await data.front.close()
            await data.side.close()
        location = request.app.route_reverse("measurements:read", measurement_id=measurement.id)
        return Response(measurement_out(measurement), status_code=202, headers={"Location": location})

    @get("/measurements/{measurement_id:uuid}", name="measurements:read", summary="One of your measurements")
    async def read(
        self,
        measurement_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> schemas.Measurement:
        return measurement_out(await queries.own_measurement(db_session, principal.user_id, measurement_id))

    @get(
        "/measurements/{measurement_id:uuid}/events",
        summary="Server-sent events: the status of one of your measurements as it changes",
        description="`event: status` messages whose data is the Measurement: the current state "
        "first, then each change. The stream ends once the measurement is `ready` or `failed` (or "
        "after a few minutes; reconnect to go on). Comments keep an idle connection alive.",
        media_type="text/event-stream",
    )
    async def events(
        self,
        measurement_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        resources: NamedDependency[AppResources],
    ) -> ServerSentEvent:
        # Ownership is checked here, so a stranger gets a plain 404 rather than a stream.
        await queries.own_measurement(db_session, principal.user_id, measurement_id)
        return ServerSentEvent(_status_events(resources, measurement_id))

    @get("/me/body-profile", summary="Your body profile: your latest ready measurement")
    async def body_profile(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> schemas.Measurement:
        return measurement_out(await queries.body_profile(db_session, principal.user_id))


def _status_event(measurement: Measurement) -> ServerSentEventMessage:
    body = measurement_out(measurement)
    return ServerSentEventMessage(event="status", data=msgspec.json.encode(body).decode())


async def _status_events(
    resources: AppResources, measurement_id: UUID
) -> AsyncIterator[ServerSentEventMessage]:
    """The current state, then every change until the measurement is finished or the stream
    has run its maximum time. A change announced on Redis is read back from the database (so
    what is sent is committed); the row is also re-read at every heartbeat, in case an
    announcement was lost."""
    settings = resources.settings
    deadline = time.monotonic() + settings.measurement_events_max_seconds
    async with watch_status(resources.redis, measurement_id) as watch:
        # Subscribed first, read second: a change in between is not missed.
        current = await queries.fresh_measurement(resources.db.session_maker, measurement_id)
        if current is None:
            return
        yield _status_event(current)
        last = current.status
        while last not in FINISHED and (left := deadline - time.monotonic()) > 0:
            announced = await watch.wait(min(settings.measurement_events_heartbeat_seconds, left))
            current = await queries.fresh_measurement(resources.db.session_maker, measurement_id)
            if current is None:
                return
            if current.status != last:
                yield _status_event(current)
                last = current.status
            elif not announced:
                yield ServerSentEventMessage(comment="keep-alive", data=None)
