"""FedEraser (Liu et al., IWQoS 2021): replay stored rounds, calibrating each step by brief retraining.

Step j starts from the unlearned model M̃^{t_j}; the remaining clients train ⌈r·E_loc⌉ epochs from it,
and their new directions are rescaled with the magnitudes of their stored updates U_k^{t_j}, which
are paired with the round's *starting* model M^{t_j} (the public code pairs them with the
post-aggregation model). The first step needs no calibration: M̃^{t_1} = M^{t_1}.
"""

from __future__ import annotations

import math
import time

from fedunlearn.fl.params import add, subtract, weighted_sum
from fedunlearn.fl.trainer import client_seed
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.calibration import calibrated_step
from fedunlearn.unlearning.registry import register
from fedunlearn.unlearning.replay import load_round, replay_schedule

CALIBRATION_STREAM = 1


@register
class FedEraser(UnlearningMethod):
    name = "federaser"

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        cfg = ctx.cfg.unlearning.federaser
        epochs = max(1, math.ceil(cfg.calibration_ratio * ctx.cfg.fl.local_epochs))
        plan = ctx.plan(local_epochs=epochs)
        schedule = replay_schedule(ctx, cfg.interval)
        outcome = UnlearningOutcome(ctx.history.global_model(schedule[0]))
        outcome.info = {"calibration_epochs": epochs, "steps": len(schedule)}
        for j, round_ in enumerate(schedule):
            t0 = time.perf_counter()
            stored = load_round(ctx, round_)
            if not stored.cids:
                continue
            params = outcome.params
            if j == 0:
                step = weighted_sum(stored.updates, stored.weights)
                used = stored.cids
            else:
                seeds = {c: client_seed(ctx.cfg.seed, CALIBRATION_STREAM, round_, c) for c in stored.cids}
                replies = ctx.trainer.train(params, seeds, plan, group=f"{self.name}-{round_}")
                used = [u.cid for u in replies]
                if not used:
                    continue
                # clients that failed to reply drop out of this step; weights renormalise over the rest
                stored = stored.restrict(used)
                new = [subtract(u.params, params) for u in replies]
                step = calibrated_step(stored.updates, new, stored.weights, cfg.granularity)
            outcome.params = add(params, step)
            accuracy, loss = ctx.evaluate(outcome.params)
            outcome.rounds.add(self.name, j + 1, len(schedule), accuracy, loss, time.perf_counter() - t0, used)
        return outcome
