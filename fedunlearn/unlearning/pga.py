"""PGA (Halimi et al., 2022): gradient ascent on the leaving clients' data inside an L2 ball around the
reference model (the mean of the other clients' last local models), then a few FL rounds without them.

The ascent runs where the leaving clients' data are: here on the server with their data, counted as
client-epochs (and model bytes) of the leaving clients.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedunlearn.config import spec
from fedunlearn.evaluation import metrics
from fedunlearn.fl.params import Params, add, flatten, get_params, set_params, weighted_sum
from fedunlearn.fl.task import predict_logits
from fedunlearn.models import build_model
from fedunlearn.seeds import Stream, torch_seed
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register


@dataclass
class PGAParams:
    epochs: int = spec(ge=1)
    lr: float = spec(gt=0.0)
    clip: float = spec(gt=0.0)
    radius_fraction: float = spec(gt=0.0)
    random_models: int = spec(ge=1)
    stop_accuracy: float = spec(ge=0.0)
    post_rounds: int = spec(ge=0)


def project_to_ball(w: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """The point of the L2 ball (center, radius) closest to ``w``."""
    diff = w - center
    norm = float(np.linalg.norm(diff))
    return w if norm <= radius else center + diff * (radius / norm)


def _project_model(model: nn.Module, center: dict[str, torch.Tensor], radius: float) -> None:
    with torch.no_grad():
        names = [n for n, _ in model.named_parameters()]
        params = dict(model.named_parameters())
        diff = torch.cat([(params[n] - center[n]).ravel() for n in names])
        norm = float(diff.norm())
        if norm > radius:
            for n in names:
                params[n].copy_(center[n] + (params[n] - center[n]) * (radius / norm))


@register("pga")
class PGA(UnlearningMethod[PGAParams]):
    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p, data = self.params, ctx.data
        gone = set(ctx.forget)
        with_them = [t for t in ctx.history.rounds_stored() if gone & set(ctx.history.participants(t))]
        if not with_them:
            return UnlearningOutcome(ctx.trained, info={"reference_round": None})
        last = with_them[-1]
        others = [c for c in ctx.history.participants(last) if c not in gone]
        # w_ref = (N·M − Σ_u w_u)/(N − |u|): the mean of the other clients' local models of that round
        reference: Params = ctx.history.global_model(last)
        if others:
            reference = add(
                reference,
                weighted_sum([ctx.history.client_update(last, c) for c in others], [1.0 / len(others)] * len(others)),
            )
        model = build_model(ctx.cfg.model, data.input_shape, data.num_classes, ctx.cfg.seed)
        ref_vec = flatten(reference)
        distances = [
            np.linalg.norm(
                flatten(get_params(build_model(ctx.cfg.model, data.input_shape, data.num_classes, s))) - ref_vec
            )
            for s in range(ctx.cfg.seed + 1, ctx.cfg.seed + 1 + p.random_models)
        ]
        radius = p.radius_fraction * float(np.mean(distances))
        set_params(model, reference)
        center = {n: q.detach().clone() for n, q in model.named_parameters()}
        forgotten = data.clients(sorted(gone))
        x, y = torch.from_numpy(forgotten.x), torch.from_numpy(forgotten.y)
        optimizer = torch.optim.SGD(model.parameters(), lr=p.lr)
        loss_fn = nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(torch_seed(ctx.cfg.seed, Stream.PGA_ASCENT))
        outcome = UnlearningOutcome(reference, info={"reference_round": last, "radius": radius})
        epochs_run, steps, stopped = 0, 0, False
        for epoch in range(1, p.epochs + 1):
            t0 = time.perf_counter()
            order = torch.randperm(len(y), generator=generator)
            for i in range(0, len(y), ctx.cfg.fl.batch_size):
                model.train()
                idx = order[i : i + ctx.cfg.fl.batch_size]
                optimizer.zero_grad(set_to_none=True)
                (-loss_fn(model(x[idx]), y[idx])).backward()
                nn.utils.clip_grad_norm_(model.parameters(), p.clip)
                optimizer.step()
                _project_model(model, center, radius)
                steps += 1
                own = metrics.accuracy(predict_logits(model, forgotten.x), forgotten.y)
                if own is not None and own < p.stop_accuracy:
                    stopped = True
                    break
            epochs_run = epoch
            outcome.params = get_params(model)
            ctx.step(outcome.rounds, f"{self.name}-ascent", epoch, p.epochs, outcome.params, t0, [], unit="epoch")
            if stopped:
                break
        ctx.charge_clients(sorted(gone), epochs_run * len(gone), outcome.params)
        outcome.info.update({"ascent_epochs": epochs_run, "ascent_steps": steps, "stopped_early": stopped})
        if p.post_rounds:
            outcome.params, post = ctx.recover(outcome.params, p.post_rounds, f"{self.name}-post")
            outcome.rounds.extend(post)
        return outcome
