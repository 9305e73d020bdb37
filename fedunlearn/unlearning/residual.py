"""FedRecovery's residual arithmetic (Zhang et al., TIFS 2023), as pure functions on flat vectors."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def round_residual(updates: Sequence[np.ndarray], weights: Sequence[float], forgotten: Sequence[bool]) -> np.ndarray:
    """δ_t = Σ_k p_k U_k − Σ_{k∉u} p'_k U_k (full aggregate minus the aggregate without the forgotten)."""
    w = np.asarray(weights, dtype=np.float64)
    keep = ~np.asarray(forgotten, dtype=bool)
    full = sum(wi * u for wi, u in zip(w, updates, strict=True))
    if not keep.any():
        return np.asarray(full)
    kept_w = w[keep] / w[keep].sum()
    without = sum(wi * u for wi, u in zip(kept_w, [u for u, k in zip(updates, keep, strict=True) if k], strict=True))
    return np.asarray(full - without)


def round_weights(global_updates: Sequence[np.ndarray]) -> np.ndarray:
    """p_t = ‖ΔF_t‖² / Σ_j ‖ΔF_j‖²."""
    sq = np.array([float(g @ g) for g in global_updates])
    total = sq.sum()
    return sq / total if total > 0 else np.zeros_like(sq)


def gaussian_sigma(sensitivity: float, epsilon: float, beta: float) -> float:
    """σ of the Gaussian mechanism for (ε, β)-indistinguishability: Δ·√(2 ln(1.25/β))/ε."""
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / beta)) / epsilon
