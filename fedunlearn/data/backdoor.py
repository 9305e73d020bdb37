"""Backdoor probe: a bright square trigger in the bottom-right corner, relabelled to a target class."""

from __future__ import annotations

import numpy as np

from fedunlearn.data.datasets import ArrayDataset


def add_trigger(x: np.ndarray, size: int, value: float) -> np.ndarray:
    """A copy of ``x`` with the trigger set: the last size×size pixels of images (N×C×H×W),
    or the last size² features of flat inputs (N×F)."""
    out = x.copy()
    if out.ndim == 4:
        out[:, :, -size:, -size:] = value
    else:
        out[:, -size * size :] = value
    return out


def choose_poisoned(indices: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The round(fraction · n) of ``indices`` a backdoored client poisons."""
    count = round(fraction * len(indices))
    return np.sort(rng.choice(indices, size=count, replace=False)) if count else indices[:0]


def poison(data: ArrayDataset, indices: np.ndarray, target: int, size: int, value: float) -> ArrayDataset:
    """A copy of ``data`` whose samples at ``indices`` carry the trigger and the target label."""
    x, y = data.x.copy(), data.y.copy()
    x[indices] = add_trigger(x[indices], size, value)
    y[indices] = target
    return ArrayDataset(x, y)


def triggered_test_set(test: ArrayDataset, target: int, size: int, value: float) -> ArrayDataset:
    """Test inputs whose true label is not the target, with the trigger added; labels kept true."""
    keep = test.y != target
    return ArrayDataset(add_trigger(test.x[keep], size, value), test.y[keep])
