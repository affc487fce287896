"""The one place that talks to onnxruntime: providers, thread counts, lazy loading under a lock."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from inference.manifest import Manifest, verify


class OnnxSession:
    """An onnxruntime session for one model, created on first use (thread-safe)."""

    def __init__(self, manifest: Manifest, *, intra_op_threads: int = 2) -> None:
        self.manifest = manifest
        self.intra_op_threads = intra_op_threads
        self._session: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self.loaded:
                return
            import onnxruntime as ort  # noqa: PLC0415  # only worker processes load models

            verify(self.manifest)
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.intra_op_threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Memory arenas grow to the largest batch seen and never shrink; keep RSS flat.
            options.enable_cpu_mem_arena = False
            self._session = ort.InferenceSession(
                str(self.manifest.path), sess_options=options, providers=["CPUExecutionProvider"]
            )

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if not self.loaded:
            self.load()
        result: list[np.ndarray] = self._session.run(outputs, feeds)
        return result
