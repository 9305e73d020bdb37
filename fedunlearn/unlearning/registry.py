"""Method name → implementation. A method module registers its class with ``@register``."""

from __future__ import annotations

from fedunlearn.unlearning.base import UnlearningMethod

_METHODS: dict[str, type[UnlearningMethod]] = {}


def register(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    if cls.name in _METHODS:
        raise ValueError(f"unlearning method {cls.name!r} registered twice")
    _METHODS[cls.name] = cls
    return cls


def registered() -> tuple[str, ...]:
    """Registered method names, in registration order."""
    return tuple(_METHODS)


def create(name: str) -> UnlearningMethod:
    if name not in _METHODS:
        raise KeyError(f"unknown unlearning method {name!r}; allowed: {', '.join(_METHODS)}")
    return _METHODS[name]()
