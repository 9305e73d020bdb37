"""Unlearning methods behind one interface; importing this package registers them all."""

from fedunlearn.unlearning import (  # noqa: F401  (registration, in the order `all` runs them)
    fedaccum,
    federaser,
    fedrecover,
    fedrecovery,
    finetune,
    kd,
    pga,
    retrain,
    rollback,
)
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import create, registered

__all__ = ["UnlearningContext", "UnlearningMethod", "UnlearningOutcome", "create", "registered"]
