"""The least-squares fit behind the body-measurement calibration (pixel scale and per-measurement
linear models)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fit_linear(x: Sequence[Sequence[float]], y: Sequence[float], ridge: float = 1e-3) -> np.ndarray:
    """Least squares with a small ridge (intercept first, not penalised)."""
    a = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=np.float64)])
    penalty = ridge * np.eye(a.shape[1])
    penalty[0, 0] = 0.0
    coefficients: np.ndarray = np.linalg.solve(
        a.T @ a + penalty * len(y), a.T @ np.asarray(y, dtype=np.float64)
    )
    return coefficients
