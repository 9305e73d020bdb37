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
from fedunlearn.unlearning.kd import KDParams, fukd, require_server_samples
from fedunlearn.unlearning.recovery import RecoveryParams, require_recovery
from fedunlearn.unlearning.registry import register


@dataclass
class KDRecoverParams:
    distill: KDParams = field(default_factory=KDParams)
    recovery: RecoveryParams = field(default_factory=RecoveryParams)


@register("kd_recover")
class KDRecover(UnlearningMethod[KDRecoverParams]):
    """FUKD's subtraction and distillation (clipped, to convergence), then recovery rounds with the remaining
    clients, clipped and capped at ``recovery.max_share`` of training's rounds."""

    def validate(self, cfg: Config) -> None:
        require_server_samples(cfg, self.name)
        require_recovery(cfg, self.name, self.params.recovery)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        outcome = fukd(ctx, self.params.distill, f"{self.name}-distill")
        outcome.params, recovered, outcome.stop = ctx.recover_until(
            outcome.params, self.params.recovery, f"{self.name}-recovery"
        )
        outcome.rounds.extend(recovered)
        return outcome
