"""Finetune (naive baseline): keep training the trained model for N rounds without the forgotten clients."""

from __future__ import annotations

import numpy as np

from fedunlearn.fl.training import replay_rounds, sample_clients
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register

FINETUNE_STREAM = 4


@register
class Finetune(UnlearningMethod):
    name = "finetune"

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        cfg = ctx.cfg
        last = max(ctx.history.rounds())
        remaining = [c for c in range(cfg.fl.num_clients) if c not in set(ctx.forget)]
        rng = np.random.default_rng([cfg.seed, FINETUNE_STREAM])
        schedule = [
            (last + i, sample_clients(remaining, cfg.fl.fraction_train, rng))
            for i in range(1, cfg.unlearning.finetune.rounds + 1)
        ]
        params, log = replay_rounds(ctx.trainer, ctx.trained, schedule, ctx.plan(), cfg.seed, ctx.evaluate, self.name)
        return UnlearningOutcome(params, log)
