"""Unlearning methods behind one interface; importing this package registers them all."""

from fedunlearn.unlearning import fedaccum, federaser, retrain  # noqa: F401  (registration)
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import create, registered

__all__ = ["UnlearningContext", "UnlearningMethod", "UnlearningOutcome", "create", "registered"]
