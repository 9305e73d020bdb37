"""FedEraser's calibration math: new update directions with the stored update magnitudes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedunlearn.fl.params import Params, flatten, unflatten, weighted_sum

GRANULARITIES = ("client", "layer")


def rescale(direction: np.ndarray, magnitude: float) -> np.ndarray:
    """magnitude · direction / ‖direction‖ (zero if the direction is zero)."""
    norm = float(np.linalg.norm(direction))
    if norm == 0.0:
        return np.zeros_like(direction)
    return direction * (magnitude / norm)


def calibrate_client(old: Params, new: Params) -> Params:
    """Ũ_k = ‖U_k‖ · Û_k / ‖Û_k‖ over the whole update vector of one client."""
    return unflatten(rescale(flatten(new), float(np.linalg.norm(flatten(old)))), new)


def calibrate_layers(old: Params, new: Params) -> Params:
    """Per layer (array): ‖old_l‖ · new_l / ‖new_l‖."""
    return {
        k: rescale(new[k].astype(np.float64), float(np.linalg.norm(old[k].astype(np.float64)))).astype(np.float32)
        for k in new
    }


def calibrated_step(old: Sequence[Params], new: Sequence[Params], weights: Sequence[float], granularity: str) -> Params:
    """The calibrated global step Ũ from the clients' stored (old) and calibration (new) updates.

    ``client``: Σ_k p'_k ‖U_k‖ Û_k/‖Û_k‖ (FedEraser's paper).
    ``layer``: the averaged update calibrated layer by layer, ‖Σ p'U‖_l · (Σ p'Û)_l/‖(Σ p'Û)_l‖
    (FedEraser's public code).
    """
    if granularity == "client":
        return weighted_sum([calibrate_client(o, n) for o, n in zip(old, new, strict=True)], weights)
    if granularity == "layer":
        return calibrate_layers(weighted_sum(old, weights), weighted_sum(new, weights))
    raise ValueError(f"unknown granularity {granularity!r}; allowed: client, layer")
