"""FedEraser's calibration math: new update directions with the stored update magnitudes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from fedunlearn.core.params import Params, flatten, unflatten, weighted_sum

GRANULARITIES = ("client", "layer")
LAYER_WEIGHTS = ("equal", "samples")


def rescale(direction: np.ndarray, magnitude: float) -> np.ndarray:
    """magnitude · direction / ‖direction‖; zero when the direction is zero (the authors' code gives NaN there)."""
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


def calibrated_step(
    old: Sequence[Params],
    new: Iterable[Params],
    weights: Sequence[float],
    granularity: str,
    layer_weights: str = "samples",
) -> Params:
    """The calibrated global step Ũ from the clients' stored (old) and calibration (new) updates.

    ``client`` (the paper): Σ_k p'_k ‖U_k‖ Û_k/‖Û_k‖ with p' the clients' sample weights.
    ``layer`` (the authors' ``unlearning_step_once``): the clients' mean update calibrated layer by layer,
    ‖mean U‖_l · (mean Û)_l/‖(mean Û)_l‖; the mean has equal weights in the authors' code
    (``layer_weights: equal``) or the sample weights p' (``samples``).
    """
    if granularity == "client":  # one client's stored update in memory at a time
        return weighted_sum((calibrate_client(o, n) for o, n in zip(old, new, strict=True)), weights)
    if granularity == "layer":
        w = [1.0 / len(old)] * len(old) if layer_weights == "equal" else list(weights)
        return calibrate_layers(weighted_sum(old, w), weighted_sum(new, w))
    raise ValueError(f"unknown granularity {granularity!r}; allowed: {', '.join(GRANULARITIES)}")
