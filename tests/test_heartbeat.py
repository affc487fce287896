"""The heartbeat file behind the worker and scheduler probes (k8s/base/workers.yaml)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tasks.runtime import heartbeat
from tests.support.stack import ROOT, WorkerProcess


def probe(path: Path, max_age: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasks.runtime.heartbeat", "--max-age", str(max_age)],
        cwd=ROOT,
        env={**os.environ, "HEARTBEAT_FILE": str(path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_probe_passes_on_a_fresh_file_and_fails_on_a_stale_or_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    missing = probe(path, 60)
    assert missing.returncode == 1
    assert "no heartbeat yet" in missing.stderr
    heartbeat.touch(path)
    assert probe(path, 60).returncode == 0
    old = time.time() - 120
    os.utime(path, (old, old))
    stale = probe(path, 60)
    assert stale.returncode == 1
    assert "120 s old" in stale.stderr or "119 s old" in stale.stderr


def test_the_probe_without_a_file_configured_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTBEAT_FILE", raising=False)
    assert heartbeat.main(["--max-age", "1"]) == 2


@pytest.mark.anyio
async def test_start_beats_until_stop_removes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "heartbeat"
    assert heartbeat.start(None, 0.05) is None
    task = heartbeat.start(path, 0.05)
    await anyio.sleep(0.1)
    first = path.stat().st_mtime_ns
    await anyio.sleep(0.2)
    assert path.stat().st_mtime_ns > first
    await heartbeat.stop(task, path)
    assert task is not None
    assert task.cancelled()
    assert not path.exists()


@pytest.mark.worker
def test_a_real_worker_beats_once_started_and_removes_its_file_when_stopped(
    start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    path = tmp_path / "heartbeat"
    worker = start_worker("analytics", HEARTBEAT_FILE=str(path), HEARTBEAT_INTERVAL_SECONDS="0.5")
    try:
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert path.exists(), worker.log_text()[-3000:]
        assert probe(path, 5).returncode == 0
        first = path.stat().st_mtime_ns
        time.sleep(1.2)
        assert path.stat().st_mtime_ns > first
    finally:
        worker.stop()
    assert not path.exists()
    assert probe(path, 5).returncode == 1
