"""FedAccum: FedEraser's replay without calibration, M̃ ← M̃ + Σ p'_k U_k^{t_j} (the ablation)."""

from __future__ import annotations

import time

from fedunlearn.fl.params import add, weighted_sum
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register
from fedunlearn.unlearning.replay import load_round, replay_schedule


@register
class FedAccum(UnlearningMethod):
    name = "fedaccum"

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        schedule = replay_schedule(ctx, ctx.cfg.unlearning.fedaccum.interval)
        outcome = UnlearningOutcome(ctx.history.global_model(schedule[0]))
        for j, round_ in enumerate(schedule):
            t0 = time.perf_counter()
            stored = load_round(ctx, round_)
            if stored.cids:
                outcome.params = add(outcome.params, weighted_sum(stored.updates, stored.weights))
            accuracy, loss = ctx.evaluate(outcome.params)
            outcome.rounds.add(self.name, j + 1, len(schedule), accuracy, loss, time.perf_counter() - t0, stored.cids)
        return outcome
