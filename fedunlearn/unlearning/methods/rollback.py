"""Rollback (FATS-style, exact): restart from the model before the forgotten clients first took part."""

from __future__ import annotations

from dataclasses import dataclass

from fedunlearn.core.fedavg import replay_rounds
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register


@dataclass
class RollbackHParams:
    """No parameters."""


@register("rollback")
class Rollback(UnlearningMethod[RollbackHParams]):
    exact = True

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        first = ctx.history.first_round_of(ctx.forget)
        if first is None:  # the forgotten clients never contributed: the model is already exact
            return UnlearningOutcome(ctx.trained, info={"rollback_round": None})
        # the latest stored model at or before that round is untouched by them
        start = max(r for r in ctx.history.rounds_stored() if r <= first)
        schedule = [(t, ctx.remaining(t)) for t in ctx.history.rounds() if t >= start]
        params, log = replay_rounds(
            ctx.clients, ctx.history.global_model(start), schedule, ctx.plan(), ctx.cfg.seed, ctx.curve, self.name
        )
        return UnlearningOutcome(params, log, info={"rollback_round": start})
