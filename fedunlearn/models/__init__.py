"""Small torch models by name, sized for CPU simulation."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from fedunlearn.config import ModelConfig


def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: int) -> nn.Module:
    """Flatten → Linear → ReLU → Linear."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def cnn(input_shape: tuple[int, ...], num_classes: int, hidden: int) -> nn.Module:
    """Two 3×3 conv blocks and a linear head; any C×H×W input (pooling adapts to 4×4)."""
    if len(input_shape) != 3:
        raise ValueError(f"model=cnn needs image-shaped inputs [C, H, W], got shape {list(input_shape)}")
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, hidden, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, 2 * hidden, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(2 * hidden * 16, num_classes),
    )


MODELS: dict[str, Callable[[tuple[int, ...], int, int], nn.Module]] = {"mlp": mlp, "cnn": cnn}


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """A freshly initialised model; the same ``seed`` gives the same weights."""
    if cfg.name not in MODELS:
        raise ValueError(f"unknown model {cfg.name!r}; allowed: {', '.join(MODELS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[cfg.name](input_shape, num_classes, cfg.hidden)
