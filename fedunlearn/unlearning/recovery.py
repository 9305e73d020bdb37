"""Recovery rounds: FedAvg rounds with the remaining clients after an unlearning step (PUF, NoT, FedQUIT, SIFU,
kd_recover), and the rule that stops them. The rounds themselves run in ``UnlearningContext.recover_until``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fedunlearn.config import ConfigError, spec

RECOVERY_STOPS = ("rounds", "remaining_accuracy", "retrain_accuracy")


@dataclass
class RecoveryHParams:
    """FedAvg rounds with the remaining clients after an unlearning step, and when they stop.

    ``rounds``: exactly the cap. ``remaining_accuracy`` (deployable): until the model's accuracy on the remaining
    clients' own data — a federated evaluation, each client on its data — is back within ``tolerance`` of the
    trained model's, at most the cap. ``retrain_accuracy`` (an evaluation protocol, not deployable: it needs the
    retrained model): until test accuracy reaches retrain's, as the PUF, FedQUIT and NoT papers measure.
    The cap is min(``max_rounds``, ⌈``max_share`` × training's rounds⌉). ``max_grad_norm`` clips the recovery's
    local SGD steps (null: training's SGD unchanged).
    """

    stop: str = spec(choices=RECOVERY_STOPS)
    max_rounds: int = spec(ge=0)
    max_share: float = spec(ge=0.0)  # at most this share of training's rounds (1.0: no cap from training's length)
    tolerance: float = spec(ge=0.0)  # accuracy (a fraction) below the target that counts as recovered
    max_grad_norm: float | None = spec(gt=0.0)  # clip each local step's gradient (null: no clipping)

    def cap(self, training_rounds: int) -> int:
        return min(self.max_rounds, math.ceil(self.max_share * training_rounds))


def require_recovery(method: str, recovery: RecoveryHParams, methods: list[str]) -> None:
    """``recovery.stop=retrain_accuracy`` compares with retrain, which must then be among the run's ``methods``."""
    if recovery.stop == "retrain_accuracy" and "retrain" not in methods:
        raise ConfigError(
            f"unlearning.{method}.recovery.stop",
            "retrain_accuracy needs retrain's accuracy: add retrain to unlearning.methods (or use remaining_accuracy)",
        )
