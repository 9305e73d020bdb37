"""Finetune (naive baseline): keep training the trained model for N rounds without the forgotten clients."""

from __future__ import annotations

from fedunlearn.fl.training import replay_rounds
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register

FINETUNE_STREAM = 4


@register
class Finetune(UnlearningMethod):
    name = "finetune"

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        cfg = ctx.cfg
        schedule = ctx.new_rounds(FINETUNE_STREAM, max(ctx.history.rounds()) + 1, cfg.unlearning.finetune.rounds)
        params, log = replay_rounds(ctx.trainer, ctx.trained, schedule, ctx.plan(), cfg.seed, ctx.evaluate, self.name)
        return UnlearningOutcome(params, log)
