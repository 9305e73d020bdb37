"""PGA (Halimi et al., 2022, arXiv 2207.05521): projected gradient ascent on the leaving clients' data inside an
L2 ball around the reference model, then a few FL rounds without them.

As the authors' code does it (IBM/federated-unlearning @ 6f51bbc, notebook cell 34), by default:

* reference w_ref = the mean of the other clients' local models of the last round the leaving client took part in
  (the code's N/(N−1)·w^T − w_u/(N−1) under its unweighted FedAvg; the paper's (1/(N−1))·Σ_{j≠u} w_j);
* radius δ = sqrt(radius_fraction · mean_r ‖w_ref − w_r‖²) over ``random_models`` fresh initialisations w_r
  (the code's ``threshold = mean squared distance / 3``, projected to norm sqrt(threshold));
* SGD on −CE, lr 0.01, momentum 0.9, batch 128, gradient norm clipped to 5, at most 5 epochs, projection after
  every step;
* stop (``stop: distance``) after the first step at which ‖w − w_u‖² > 2.2, w_u the leaving client's last local
  model (the code; the paper leaves the threshold a hyper-parameter).

``stop: accuracy`` is the paper's text instead ("early stopping if the validation accuracy drops below a
predetermined threshold τ"): the paper does not say which data; fedunlearn measures accuracy on the leaving
clients' own training data — the only data the unlearning client has — with τ = ``stop_accuracy``.

The ascent runs where the leaving clients' data are: here on the server with their data, counted as their
client-epochs and as one model sent to them and one back. Several leaving clients (the code handles one) ascend
together on their pooled data; w_ref and w_u come from the last round any of them took part in, w_u the mean of
the local models of those of them in that round. Needs every round stored (``history.interval=1``): w_ref and w_u
are the last such round's, as the code's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedunlearn.config import Config, spec
from fedunlearn.core.params import Params, add, get_params, set_params, weighted_sum
from fedunlearn.core.task import predict_logits
from fedunlearn.evaluation import metrics
from fedunlearn.models import build_model
from fedunlearn.seeds import declare, torch_seed
from fedunlearn.unlearning.base import (
    Stop,
    UnlearningContext,
    UnlearningMethod,
    UnlearningOutcome,
    require_every_round,
)
from fedunlearn.unlearning.registry import register

PGA_ASCENT = declare("pga ascent", 4)  # the order of the leaving clients' samples in the ascent

STOPS = ("distance", "accuracy")


@dataclass
class PGAHParams:
    stop: str = spec(choices=STOPS)  # distance: the authors' code; accuracy: the paper's text
    distance_threshold: float = spec(gt=0.0)  # stop=distance: ‖w − w_u‖² above this ends the ascent
    stop_accuracy: float = spec(ge=0.0)  # stop=accuracy: τ, on the leaving clients' data
    radius_fraction: float = spec(gt=0.0)  # δ² = fraction · mean squared distance from w_ref to random models
    random_models: int = spec(ge=1)
    epochs: int = spec(ge=1)  # at most this many ascent epochs
    lr: float = spec(gt=0.0)
    momentum: float = spec(ge=0.0, lt=1.0)
    batch_size: int = spec(ge=1)
    clip: float = spec(gt=0.0)  # gradient norm clip
    post_rounds: int = spec(ge=0)  # FL rounds with the remaining clients afterwards
    post_max_steps: int | None = spec(ge=1)  # local SGD steps per client in those rounds at most (null: no cap)


def pga_radius(squared_distances: np.ndarray, fraction: float) -> float:
    """δ = sqrt(fraction · mean ‖w_ref − w_r‖²) (the authors' code: fraction = 1/3 of the mean squared distance)."""
    return float(np.sqrt(fraction * np.mean(squared_distances)))


def project_to_ball(w: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """The point of the L2 ball (center, radius) closest to ``w``."""
    diff = w - center
    norm = float(np.linalg.norm(diff))
    return w if norm <= radius else center + diff * (radius / norm)


def _vector(model: nn.Module) -> torch.Tensor:
    return nn.utils.parameters_to_vector(model.parameters())


def _project(model: nn.Module, center: torch.Tensor, radius: float) -> None:
    with torch.no_grad():
        w = _vector(model)
        norm = float((w - center).norm())
        if norm > radius:
            nn.utils.vector_to_parameters(center + (w - center) * (radius / norm), model.parameters())


def _mean(models: list[Params]) -> Params:
    return weighted_sum(models, [1.0 / len(models)] * len(models))


@register("pga")
class PGA(UnlearningMethod[PGAHParams]):
    """Projected gradient ascent on the leaving clients' data, then FL rounds without them."""

    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_every_round(cfg, self.name)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p, data = self.hparams, ctx.data
        gone = set(ctx.forget)
        with_them = [t for t in ctx.history.rounds_stored() if gone & set(ctx.history.participants(t))]
        if not with_them:
            return UnlearningOutcome(ctx.trained, info={"reference_round": None})
        last = with_them[-1]
        start = ctx.history.global_model(last)
        cids = ctx.history.participants(last)
        others = [c for c in cids if c not in gone]
        leaving = [add(start, ctx.history.client_update(last, c)) for c in cids if c in gone]
        reference = _mean([add(start, ctx.history.client_update(last, c)) for c in others]) if others else start
        model = build_model(ctx.cfg.model, data.input_shape, data.num_classes, ctx.cfg.seed)
        set_params(model, _mean(leaving))
        target = _vector(model).detach().clone()  # w_u: the leaving clients' last local model(s)
        set_params(model, reference)
        center = _vector(model).detach().clone()
        with torch.no_grad():
            randoms = [build_model(ctx.cfg.model, data.input_shape, data.num_classes, s) for s in self._seeds(ctx)]
            squared = np.array([float((_vector(r) - center).norm() ** 2) for r in randoms])
        radius = pga_radius(squared, p.radius_fraction)
        forgotten = data.clients(sorted(gone))
        x, y = torch.from_numpy(forgotten.x), torch.from_numpy(forgotten.y)
        optimizer = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum)
        loss_fn = nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(torch_seed(ctx.cfg.seed, PGA_ASCENT))
        outcome = UnlearningOutcome(
            reference, info={"reference_round": last, "radius": radius, "distance_to_leaving": None}
        )
        steps, rule = 0, "epochs"
        for epoch in range(1, p.epochs + 1):
            t0 = time.perf_counter()
            order = torch.randperm(len(y), generator=generator)
            for i in range(0, len(y), p.batch_size):
                model.train()
                idx = order[i : i + p.batch_size]
                optimizer.zero_grad(set_to_none=True)
                (-loss_fn(model(x[idx]), y[idx])).backward()
                nn.utils.clip_grad_norm_(model.parameters(), p.clip)
                optimizer.step()
                _project(model, center, radius)
                steps += 1
                if self._should_stop(model, target, forgotten.x, forgotten.y, ctx.cfg.evaluation.batch_size):
                    rule = p.stop
                    break
            outcome.params = get_params(model)
            ctx.step(outcome.rounds, f"{self.name}-ascent", epoch, p.epochs, outcome.params, t0, [], unit="epoch")
            if rule != "epochs":
                break
        with torch.no_grad():
            outcome.info["distance_to_leaving"] = float((_vector(model) - target).norm() ** 2)
        epochs_run = steps / -(-len(y) // p.batch_size)  # steps over steps per epoch of the pooled data
        ctx.charge_clients(sorted(gone), epochs_run * len(gone), outcome.params, samples=epochs_run * len(y),
                           forward_samples=self.checked * len(y))  # fmt: skip
        outcome.info.update({"ascent_epochs": epochs_run, "ascent_steps": steps, "stopped_early": rule != "epochs"})
        outcome.stop = Stop(rule, steps)
        if p.post_rounds:
            outcome.params, post = ctx.recover(
                outcome.params, p.post_rounds, f"{self.name}-post", max_steps=p.post_max_steps
            )
            outcome.rounds.extend(post)
        return outcome

    def _seeds(self, ctx: UnlearningContext) -> range:
        """Initialisation seeds of the random models that set the radius (not the run's own model's seed)."""
        return range(ctx.cfg.seed + 1, ctx.cfg.seed + 1 + self.hparams.random_models)

    checked = 0  # accuracy checks on the leaving clients' data (stop=accuracy): forward passes over it

    def _should_stop(self, model: nn.Module, target: torch.Tensor, x: np.ndarray, y: np.ndarray, batch: int) -> bool:
        """The configured stop rule, checked after every ascent step (``batch``: samples per forward pass)."""
        if self.hparams.stop == "distance":
            with torch.no_grad():
                return float((_vector(model) - target).norm() ** 2) > self.hparams.distance_threshold
        self.checked += 1
        own = metrics.accuracy(predict_logits(model, x, batch), y)
        return own is not None and own < self.hparams.stop_accuracy
