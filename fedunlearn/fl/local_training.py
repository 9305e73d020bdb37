"""What a client does with its data: seeded SGD epochs, and loss/accuracy evaluation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedunlearn.data.datasets import ArrayDataset


def train_epochs(
    model: nn.Module,
    data: ArrayDataset,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    seed: int,
    device: torch.device,
) -> float:
    """Run ``epochs`` of minibatch SGD (shuffled by ``seed``); return the mean training loss."""
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.from_numpy(data.x).to(device)
    y = torch.from_numpy(data.y).to(device)
    generator = torch.Generator().manual_seed(seed)
    total, steps = 0.0, 0
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator).to(device)
        for start in range(0, len(data), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
    model.cpu()
    return total / max(steps, 1)


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Logits (N × classes) for inputs ``x`` in evaluation mode, on the CPU."""
    model.eval()
    outs = [model(torch.from_numpy(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0), dtype=np.float32)
