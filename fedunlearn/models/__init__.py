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


def flnet(input_shape: tuple[int, ...], num_classes: int, hidden: int, padding: tuple[int, int]) -> nn.Module:
    """The CNN of most federated-unlearning papers: 5×5 conv 32 → ReLU → 2×2 max-pool → 5×5 conv 64 → ReLU → 2×2
    max-pool → fc ``hidden`` → ReLU → fc classes. ``padding`` (2, 2) is IBM's FLNet of the PGA code (28×28 → 7·7·64 =
    3136 into fc1), (0, 0) Crab's FedAvgCNN (28×28 → 4·4·64 = 1024)."""
    if len(input_shape) != 3:
        raise ValueError(f"model=flnet needs image-shaped inputs [C, H, W], got shape {list(input_shape)}")
    side = list(input_shape[1:])
    for p in padding:
        side = [(s + 2 * p - 4) // 2 for s in side]
    if min(side) < 1:
        raise ValueError(
            f"model=flnet with padding {list(padding)} leaves no feature map of {list(input_shape)} inputs"
        )
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 32, 5, padding=padding[0]),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=padding[1]),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * side[0] * side[1], hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with two groups (Hsieh et al., 2020): with 32 groups, small inputs' 1×1 feature maps in the last
    stage are normalised over 2 values each, and the net does not train (measured on digits)."""
    return nn.GroupNorm(2, channels)


class _BasicBlock(nn.Module):
    """ResNet's basic block: two 3×3 convs with a (projected when the shape changes) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            _norm(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            _norm(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet18(input_shape: tuple[int, ...], num_classes: int, hidden: int) -> nn.Module:
    """ResNet-18 as used on 32×32 images (3×3 stem, no max-pool; He et al., 2016), with GroupNorm in place of
    BatchNorm as federated work does (Hsieh et al., 2020): its state is its parameters, with no running statistics
    to average. hidden=64 is the standard width (11.2M parameters for 10 classes)."""
    if len(input_shape) != 3:
        raise ValueError(f"model=resnet18 needs image-shaped inputs [C, H, W], got shape {list(input_shape)}")
    widths = [hidden, 2 * hidden, 4 * hidden, 8 * hidden]
    layers: list[nn.Module] = [nn.Conv2d(input_shape[0], hidden, 3, 1, 1, bias=False), _norm(hidden), nn.ReLU()]
    c_in = hidden
    for i, width in enumerate(widths):
        layers += [_BasicBlock(c_in, width, 1 if i == 0 else 2), _BasicBlock(width, width, 1)]
        c_in = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)


MODELS: dict[str, Callable[..., nn.Module]] = {"mlp": mlp, "cnn": cnn, "resnet18": resnet18, "flnet": flnet}


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """A freshly initialised model; the same ``seed`` gives the same weights."""
    if cfg.name not in MODELS:
        raise ValueError(f"unknown model {cfg.name!r}; allowed: {', '.join(MODELS)}")
    extra = {} if cfg.padding is None else {"padding": tuple(cfg.padding)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[cfg.name](input_shape, num_classes, cfg.hidden, **extra)
