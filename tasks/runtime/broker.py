"""The worker's module-level taskiq broker, its lifecycle hooks and the task decorator.

``taskiq worker tasks.runtime.broker:broker ...`` is started through ``python -m tasks.runtime.worker``, which
picks the queues (``WORKER_QUEUES``) and the task modules. Worker resources (database engine,
Redis client, dispatcher) are built in the ``WORKER_STARTUP`` hook, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from redis.asyncio import Redis
from taskiq import TaskiqEvents, TaskiqState

from core.adapters.images import register_heic_decoder
from core.adapters.mail import build_mailer
from core.adapters.payments import build_payment_provider
from core.adapters.storage import build_private_storage, build_storage
from core.adapters.telemetry import build_tracer_provider, instrument_engine, taskiq_middleware
from core.events import get_event_bus
from core.logging import configure_logging, get_logger
from core.settings import get_settings
from db.engine import create_database
from db.services.subscribers import register_all
from tasks.runtime import heartbeat
from tasks.runtime.factory import build_broker, redis_url_for
from tasks.runtime.metrics import MetricsEndpoint, TaskMetricsMiddleware, count_parked, serve_metrics
from tasks.runtime.queues import Queue, parse_queues, stream_name
from tasks.runtime.resources import Models, TaskResources

log = get_logger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


broker = build_broker(get_settings(), parse_queues(os.environ.get("WORKER_QUEUES")))
# Last, so it times a run once a retry's wait is over and sees whether a retry was scheduled.
broker.add_middlewares(TaskMetricsMiddleware())
broker.on_park = count_parked


def queue_task(queue: Queue, name: str, **labels: Any) -> Callable[[F], F]:
    """Register a task on ``queue`` under the name ``"<queue>.<name>"``."""

    def decorate(func: F) -> F:
        broker.task(task_name=f"{queue}.{name}", queue_name=stream_name(queue), **labels)(func)
        return func

    return decorate


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _startup_worker(state: TaskiqState) -> None:
    from tasks.runtime.dispatch import BrokerDispatcher  # noqa: PLC0415  # avoid a cycle at import

    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, process="worker")
    # Tasks change orders too (expiry, payments): their events need the same subscribers.
    register_all(get_event_bus())
    db = create_database(settings, "worker")
    tracer_provider = build_tracer_provider(settings, "worker")
    if tracer_provider is not None:
        instrument_engine(db.engine, tracer_provider)
        broker.add_middlewares(taskiq_middleware(tracer_provider))
    models = None
    if any(stream.endswith(":inference") for stream in broker.streams):
        models = await _load_models(settings.inference_threads, settings.inference_max_batch)
    state.resources = TaskResources(
        settings=settings,
        db=db,
        redis=Redis.from_url(redis_url_for(settings), socket_timeout=settings.redis_socket_timeout_seconds),
        dispatcher=BrokerDispatcher(broker),
        mailer=build_mailer(settings),
        storage=build_storage(settings),
        private_storage=build_private_storage(settings),
        payments=build_payment_provider(settings),
        models=models,
    )
    state.metrics = serve_metrics(settings, state.resources.redis, db)
    state.heartbeat = heartbeat.start(settings.heartbeat_file, settings.heartbeat_interval_seconds)
    log.info("worker started", queues=[s.rsplit(":", 1)[-1] for s in broker.streams])


async def _load_models(threads: int, max_batch: int) -> Models:
    # Imported here: only workers serving the inference queue pay for numpy models and onnxruntime.
    from inference.body import PersonSegmenter, PoseEstimator  # noqa: PLC0415
    from inference.body_measure.measurer import load_body_measurer  # noqa: PLC0415
    from inference.manifest import all_manifests  # noqa: PLC0415
    from inference.memory import release_freed_memory  # noqa: PLC0415
    from inference.product_embedding import ProductEmbedder  # noqa: PLC0415
    from tasks.runtime.batching import EmbeddingBatcher  # noqa: PLC0415

    # Product images and body photos may be HEIC (phones); Pillow opens them once this is done.
    register_heic_decoder()
    manifests = all_manifests()
    manifest = manifests["product_embedding"]
    embedder = ProductEmbedder(manifest, intra_op_threads=threads, max_batch=max_batch)
    segmenter = PersonSegmenter(manifests["person_segmentation"], intra_op_threads=threads)
    pose = PoseEstimator(manifests["pose_landmarks"], intra_op_threads=threads)
    # The body measurer runs on the same segmentation and pose sessions: each model loaded once.
    body = load_body_measurer(manifests, intra_op_threads=threads, segmenter=segmenter, pose=pose)
    for session in (embedder.session, segmenter.session, pose.session):
        await anyio.to_thread.run_sync(session.load)
    release_freed_memory()  # model loading leaves large freed buffers behind (files are read whole)
    log.info("models loaded", models=sorted(manifests), body_calibration=body.version)
    return Models(
        batcher=EmbeddingBatcher(embedder, max_batch=max_batch),
        embedding_model=f"{manifest.name}@{manifest.version}",
        segmenter=segmenter,
        pose=pose,
        body=body,
    )


@broker.on_event(TaskiqEvents.CLIENT_STARTUP)
async def _startup_client(state: TaskiqState) -> None:
    # The scheduler process is a broker client; give it the same log format as everyone else.
    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, process="scheduler")
    state.heartbeat = heartbeat.start(settings.heartbeat_file, settings.heartbeat_interval_seconds)


@broker.on_event(TaskiqEvents.CLIENT_SHUTDOWN)
async def _shutdown_client(state: TaskiqState) -> None:
    await heartbeat.stop(getattr(state, "heartbeat", None), get_settings().heartbeat_file)


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _shutdown_worker(state: TaskiqState) -> None:
    await heartbeat.stop(getattr(state, "heartbeat", None), get_settings().heartbeat_file)
    metrics: MetricsEndpoint | None = getattr(state, "metrics", None)
    if metrics is not None:
        await anyio.to_thread.run_sync(metrics.close)
    resources: TaskResources | None = getattr(state, "resources", None)
    if resources is not None:
        if resources.models is not None:
            await resources.models.batcher.close()
        await resources.payments.close()
        await resources.db.dispose()
        await resources.redis.aclose()
    log.info("worker stopped")
