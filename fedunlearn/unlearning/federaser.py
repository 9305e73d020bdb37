"""FedEraser (Liu et al., IWQoS 2021): replay stored rounds, calibrating each step by brief retraining.

Step j starts from the unlearned model M̃^{t_j}; the remaining clients train ⌈r·E_loc⌉ epochs from it,
and their new directions are rescaled with the magnitudes of their stored updates U_k^{t_j}, which
are paired with the round's *starting* model M^{t_j} (the public code pairs them with the
post-aggregation model). The first step needs no calibration: M̃^{t_1} = M^{t_1}.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fedunlearn.config import Config, spec
from fedunlearn.fl.params import add, subtract, weighted_sum
from fedunlearn.seeds import Stream, client_seed
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome, require_stored
from fedunlearn.unlearning.calibration import GRANULARITIES, calibrated_step
from fedunlearn.unlearning.registry import register
from fedunlearn.unlearning.replay import load_round, replay_schedule


@dataclass
class FedEraserParams:
    calibration_ratio: float = spec(gt=0.0, le=1.0)  # r
    interval: int = spec(ge=1)  # Δt: replay every interval-th round
    granularity: str = spec(choices=GRANULARITIES)


@register("federaser")
class FedEraser(UnlearningMethod[FedEraserParams]):
    def validate(self, cfg: Config) -> None:
        require_stored(cfg, "unlearning.federaser.interval", self.params.interval)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p = self.params
        epochs = max(1, math.ceil(p.calibration_ratio * ctx.cfg.fl.local_epochs))
        plan = ctx.plan(epochs)
        schedule = replay_schedule(ctx, p.interval)
        outcome = UnlearningOutcome(ctx.history.global_model(schedule[0]))
        outcome.info = {"calibration_epochs": epochs, "steps": len(schedule)}
        for j, round_ in enumerate(schedule):
            t0 = time.perf_counter()
            stored = load_round(ctx, round_)
            if not stored.cids:
                continue
            params = outcome.params
            replies = None
            if j == 0:
                step = weighted_sum(stored.updates, stored.weights)
                used = stored.cids
            else:
                seeds = {c: client_seed(ctx.cfg.seed, Stream.CALIBRATION, round_, c) for c in stored.cids}
                replies = ctx.trainer.train(params, seeds, plan, group=f"{self.name}-{round_}")
                used = [u.cid for u in replies]
                if not used:
                    continue
                # clients that failed to reply drop out of this step; weights renormalise over the rest
                stored = stored.restrict(used)
                new = [subtract(u.params, params) for u in replies]
                step = calibrated_step(stored.updates, new, stored.weights, p.granularity)
            outcome.params = add(params, step)
            ctx.step(outcome.rounds, self.name, j + 1, len(schedule), outcome.params, t0, used, replies)
        return outcome
