"""NoT, ``fednot`` here (Khalil, Brunswic, Lamghari, Li, Beitollahi, Chen; CVPR 2025, arXiv 2503.05657): negate
the first layer's weights, then FedAvg rounds with the remaining clients. No history, no target data.

There is no official code. The paper negates a chosen set of layers, the first by default; the public
re-implementations (puf_unlearning/FedQUIT ``unlearning_routine.py``, EFFACE ``fednot.py``) negate the weight tensor
of the first layer and leave its bias, which fedunlearn follows: the first ``layers`` weight tensors (arrays of two
or more dimensions, in the model's order) are negated. The papers that benchmark NoT recover until test accuracy
reaches the retrained model's (``recovery.stop=retrain_accuracy``, an evaluation protocol); the deployable default
stops once the remaining clients' own accuracy is back to the trained model's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fedunlearn.config import Config, spec
from fedunlearn.core.params import Params
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.recovery import RecoveryHParams, require_recovery
from fedunlearn.unlearning.registry import register


@dataclass
class FedNoTHParams:
    layers: int = spec(ge=1)  # how many of the first weight tensors are negated
    recovery: RecoveryHParams = field(default_factory=RecoveryHParams)


def negate_first_layers(params: Params, layers: int) -> tuple[Params, list[str]]:
    """``params`` with its first ``layers`` weight tensors (ndim ≥ 2, in order) negated; and their names."""
    names = [k for k, v in params.items() if v.ndim >= 2 and v.dtype.kind == "f"][:layers]
    return {k: -v if k in names else v.copy() for k, v in params.items()}, names


@register("fednot")
class FedNoT(UnlearningMethod[FedNoTHParams]):
    """Negate the first layer's weights, then recovery rounds without the forgotten clients."""

    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_recovery(self.name, self.hparams.recovery, methods)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        t0 = time.perf_counter()
        in_order = {k: ctx.trained[k] for k in ctx.model().state_dict()}  # "first" is the architecture's order
        negated, names = negate_first_layers(in_order, self.hparams.layers)
        outcome = UnlearningOutcome(negated, info={"negated": names})
        ctx.step(outcome.rounds, f"{self.name}-negate", 1, 1, negated, t0, [])
        outcome.params, recovered, outcome.stop = ctx.recover_until(
            negated, self.hparams.recovery, f"{self.name}-recovery"
        )
        outcome.rounds.extend(recovered)
        return outcome
