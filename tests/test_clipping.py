"""Gradient clipping of local SGD (recovery rounds and kd_recover's distillation clip; training does not)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedunlearn.core.task import TrainPlan, train_local
from fedunlearn.data.datasets import ArrayDataset
from fedunlearn.flower.codec import plan_to_record, record_to_plan


def one_step_change(max_grad_norm: float | None) -> float:
    """L2 norm of the parameter change of one full-batch SGD step (lr 1, no momentum) on steep data."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    x = (np.random.default_rng(0).normal(size=(8, 4)) * 100).astype(np.float32)
    data = ArrayDataset(x, np.arange(8, dtype=np.int64) % 3)
    train_local(model, data, TrainPlan(1.0, 1.0, 8, 0.0, max_grad_norm), seed=0, device=torch.device("cpu"))
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return float(torch.linalg.vector_norm(after - before))


def test_a_clipped_step_moves_the_model_by_at_most_lr_times_the_norm() -> None:
    assert one_step_change(None) > 10.0
    assert one_step_change(0.5) == pytest.approx(0.5, rel=1e-5)


@pytest.mark.parametrize("norm", [None, 5.0])
def test_the_plan_record_carries_the_clip_both_ways(norm: float | None) -> None:
    plan = TrainPlan(0.5, 0.1, 16, 0.9, norm)
    assert record_to_plan(plan_to_record(plan, 7)) == (plan, 7)
