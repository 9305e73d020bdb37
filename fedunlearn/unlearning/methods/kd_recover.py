"""kd_recover (fedunlearn's own): FUKD's step (``kd``), then FedAvg rounds with the remaining clients.

Why it exists: on long trainings no method of the field, with its published defaults, removes a backdoored client
at retraining quality for a tenth of its cost (README → Cost–quality frontier). Steps that only nudge the model
(PGA's ascent, PUF's negated update, FedQUIT's distillation) leave the backdoor dormant, and recovery rounds bring
it back; removing the client's stored contribution (FUKD's subtraction) kills it, and the distillation plus a few
rounds of the remaining clients restore accuracy. The defaults are principles, not fits: recovery stops once the
remaining clients' own accuracy (a federated evaluation) is back to the trained model's, and never spends more
than 5% of training's rounds — half of a 10× budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fedunlearn.config import Config
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.methods.kd import KDHParams, fukd, require_server_samples
from fedunlearn.unlearning.recovery import RecoveryHParams, require_recovery
from fedunlearn.unlearning.registry import register


@dataclass
class KDRecoverHParams:
    distill: KDHParams = field(default_factory=KDHParams)
    recovery: RecoveryHParams = field(default_factory=RecoveryHParams)


@register("kd_recover")
class KDRecover(UnlearningMethod[KDRecoverHParams]):
    """FUKD's subtraction and distillation (clipped, to convergence), then recovery rounds with the remaining
    clients, clipped and capped at ``recovery.max_share`` of training's rounds."""

    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_server_samples(cfg, self.name)
        require_recovery(self.name, self.hparams.recovery, methods)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        outcome = fukd(ctx, self.hparams.distill, f"{self.name}-distill")
        outcome.params, recovered, outcome.stop = ctx.recover_until(
            outcome.params, self.hparams.recovery, f"{self.name}-recovery"
        )
        outcome.rounds.extend(recovered)
        return outcome
