"""FedAccum: FedEraser's replay without calibration, M̃ ← M̃ + Σ p'_k U_k^{t_j} (the ablation)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fedunlearn.config import Config, spec
from fedunlearn.core.params import add, weighted_sum
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome, require_stored
from fedunlearn.unlearning.registry import register
from fedunlearn.unlearning.replay import load_round, replay_schedule


@dataclass
class FedAccumHParams:
    interval: int = spec(ge=1)  # replay every interval-th stored round


@register("fedaccum")
class FedAccum(UnlearningMethod[FedAccumHParams]):
    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_stored(cfg, "unlearning.fedaccum.interval", self.hparams.interval)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        schedule = replay_schedule(ctx, self.hparams.interval)
        outcome = UnlearningOutcome(ctx.history.global_model(schedule[0]))
        for j, round_ in enumerate(schedule):
            t0 = time.perf_counter()
            stored = load_round(ctx, round_)
            if stored.cids:
                outcome.params = add(outcome.params, weighted_sum(stored.updates, stored.weights))
            ctx.step(outcome.rounds, self.name, j + 1, len(schedule), outcome.params, t0, stored.cids)
        return outcome
