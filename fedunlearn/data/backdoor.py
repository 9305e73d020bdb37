"""Backdoor probe: a trigger in the bottom-right corner, relabelled to a target class.

Two triggers: ``square`` sets the last size×size pixels; ``pattern`` is ART's ``add_pattern_bd`` (the PGA
authors' backdoor, Adversarial Robustness Toolbox 1.13, distance 2): four pixels of a checkerboard one pixel in from
the corner, at (H−2, W−2), (H−3, W−3), (H−2, W−4) and (H−4, W−2).
"""

from __future__ import annotations

import numpy as np

from fedunlearn.data.datasets import ArrayDataset

PATTERN = ((-2, -2), (-3, -3), (-2, -4), (-4, -2))  # (row, column) from the bottom-right, ART's distance 2


def add_trigger(x: np.ndarray, size: int, value: float, shape: str = "square") -> np.ndarray:
    """A copy of ``x`` with the trigger set, on images (N×C×H×W, every channel) or flat inputs (N×F: the last
    size² features; only the square)."""
    out = x.copy()
    if shape == "pattern":
        if out.ndim != 4:
            raise ValueError("backdoor.trigger=pattern needs image-shaped inputs")
        for row, col in PATTERN:
            out[:, :, row, col] = value
    elif out.ndim == 4:
        out[:, :, -size:, -size:] = value
    else:
        out[:, -size * size :] = value
    return out


def choose_poisoned(indices: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The round(fraction · n) of ``indices`` a backdoored client poisons."""
    count = round(fraction * len(indices))
    return np.sort(rng.choice(indices, size=count, replace=False)) if count else indices[:0]


def poison(data: ArrayDataset, indices: np.ndarray, target: int, size: int, value: float, shape: str) -> ArrayDataset:
    """A copy of ``data`` whose samples at ``indices`` carry the trigger and the target label."""
    x, y = data.x.copy(), data.y.copy()
    x[indices] = add_trigger(x[indices], size, value, shape)
    y[indices] = target
    return ArrayDataset(x, y)


def triggered_test_set(test: ArrayDataset, target: int, size: int, value: float, shape: str) -> ArrayDataset:
    """Test inputs whose true label is not the target, with the trigger added; labels kept true."""
    keep = test.y != target
    return ArrayDataset(add_trigger(test.x[keep], size, value, shape), test.y[keep])
