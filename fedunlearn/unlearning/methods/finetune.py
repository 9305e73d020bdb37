"""Naive baseline: more FL rounds from the trained model without the forgotten clients."""

from __future__ import annotations

from dataclasses import dataclass

from fedunlearn.config import spec
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register


@dataclass
class FinetuneHParams:
    rounds: int = spec(ge=1)


@register("finetune")
class Finetune(UnlearningMethod[FinetuneHParams]):
    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        params, log = ctx.recover(ctx.trained, self.hparams.rounds, self.name)
        return UnlearningOutcome(params, log)
