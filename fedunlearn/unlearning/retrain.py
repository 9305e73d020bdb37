"""Retrain: FedAvg from the same initial model, seeds and schedule, without the forgotten clients (exact)."""

from __future__ import annotations

from fedunlearn.fl.training import replay_rounds
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register


@register
class Retrain(UnlearningMethod):
    name = "retrain"

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        rounds = ctx.history.rounds()
        schedule = [(t, ctx.remaining(t)) for t in rounds]
        params, log = replay_rounds(
            ctx.trainer,
            ctx.history.global_model(rounds[0]),
            schedule,
            ctx.plan(),
            ctx.cfg.seed,
            ctx.evaluate,
            self.name,
        )
        return UnlearningOutcome(params, log)
