"""Unlearning methods behind one interface. ``registry.discover()`` imports every method module, so adding one
is one module plus one YAML."""

from fedunlearn.unlearning.base import Stop, UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import create, discover, method_class, register, registered

__all__ = [
    "Stop",
    "UnlearningContext",
    "UnlearningMethod",
    "UnlearningOutcome",
    "create",
    "discover",
    "method_class",
    "register",
    "registered",
]
