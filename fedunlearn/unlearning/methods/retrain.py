"""Retrain: FedAvg from the same initial model, seeds and schedule, without the forgotten clients (exact)."""

from __future__ import annotations

from dataclasses import dataclass

from fedunlearn.core.fedavg import replay_rounds
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register


@dataclass
class RetrainHParams:
    """No parameters: retraining repeats training's own."""


@register("retrain")
class Retrain(UnlearningMethod[RetrainHParams]):
    exact = True

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        rounds = ctx.history.rounds()
        schedule = [(t, ctx.remaining(t)) for t in rounds]
        start = ctx.history.global_model(rounds[0])
        params, log = replay_rounds(ctx.clients, start, schedule, ctx.plan(), ctx.cfg.seed, ctx.curve, self.name)
        return UnlearningOutcome(params, log)
