"""Memory and throughput of a real inference worker (``just bench-inference``).

Starts ``python -m tasks.runtime.worker --queues inference`` against DATABASE_URL / REDIS_URL, waits for
its models to load, marks up to N product images pending, sends one embedding job per image,
waits until all are done, and prints images/s and the worker's RSS (idle with models loaded,
and after the run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import psutil
from sqlalchemy import func, select, update

from core.jobs import Job
from core.settings import get_settings
from db.engine import create_database
from db.models import ProductImage
from tasks.runtime.dispatch import BrokerDispatcher
from tasks.runtime.factory import build_broker


def worker_rss_mb(process: subprocess.Popen[bytes]) -> float:
    parent = psutil.Process(process.pid)
    rss = [p.memory_info().rss for p in parent.children(recursive=True)]
    return round(max(rss or [parent.memory_info().rss]) / 2**20, 1)


async def main(images: int) -> int:
    settings = get_settings()
    database = create_database(settings, "cli")
    broker = build_broker(settings)
    log_path = settings.data_dir / "bench-inference-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        worker = subprocess.Popen(  # noqa: ASYNC220  # started once, before the measurement
            [sys.executable, "-m", "tasks.runtime.worker", "--queues", "inference"],
            env={**os.environ},
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 120
        while "models loaded" not in log_path.read_text(errors="replace"):
            if time.monotonic() > deadline or worker.poll() is not None:
                print(log_path.read_text(errors="replace")[-3000:])
                return 1
            await asyncio.sleep(0.2)
        idle = worker_rss_mb(worker)
        async with database.session_maker() as session, session.begin():
            ids = list(await session.scalars(select(ProductImage.id).order_by(ProductImage.id).limit(images)))
            await session.execute(
                update(ProductImage)
                .where(ProductImage.id.in_(ids))
                .values(embedding_status="pending", embedding=None)
            )
        dispatcher = BrokerDispatcher(broker)
        started = time.perf_counter()
        for image_id in ids:
            await dispatcher.send(Job(task_name="inference.catalog.embed_image", args=(str(image_id),)))
        peak = idle
        finish_by = time.monotonic() + 600
        while time.monotonic() < finish_by:
            peak = max(peak, worker_rss_mb(worker))
            async with database.session_maker() as session:
                left = await session.scalar(
                    select(func.count())
                    .select_from(ProductImage)
                    .where(ProductImage.id.in_(ids), ProductImage.embedding_status == "pending")
                )
            if not left:
                break
            await asyncio.sleep(0.2)
        else:
            print(f"gave up: images still pending; see {log_path}")
            return 1
        seconds = time.perf_counter() - started
        print(
            f"{len(ids)} images in {seconds:.1f} s = {len(ids) / seconds:.1f} images/s through the queue; "
            f"worker RSS {idle} MB idle with models loaded, peak {peak} MB"
        )
        return 0
    finally:
        worker.terminate()
        worker.wait(30)
        await broker.shutdown()
        await database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    sys.exit(asyncio.run(main(parser.parse_args().images)))
