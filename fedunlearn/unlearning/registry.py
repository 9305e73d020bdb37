"""Method name → implementation, and the ``unlearning`` config section built from what registered.

A method module (``fedunlearn/unlearning/methods/``) registers its class with ``@register``; its parameters'
values live in its YAML (``conf/unlearning/<name>.yaml`` for the package's own methods, ``config_file`` for
others). ``discover`` imports every module of ``methods/``, the entry points of group ``fedunlearn.methods`` and
the modules named in the ``FEDUNLEARN_PLUGINS`` environment variable (comma-separated), so adding a method edits
no list.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.resources
import os
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args

from omegaconf import DictConfig, OmegaConf

from fedunlearn.config import Config, UnlearningConfig
from fedunlearn.unlearning.base import UnlearningMethod

_METHODS: dict[str, type[UnlearningMethod[Any]]] = {}
PLUGINS_ENV = "FEDUNLEARN_PLUGINS"
ENTRY_POINTS = "fedunlearn.methods"


M = TypeVar("M", bound=type[UnlearningMethod[Any]])


def register(name: str) -> Callable[[M], M]:
    """Class decorator: make the method available as ``unlearning.methods=[<name>]``; its hyper-parameters are
    the dataclass it is generic in (``class X(UnlearningMethod[XHParams])``)."""

    def decorate(cls: M) -> M:
        hparams = next((get_args(b)[0] for b in getattr(cls, "__orig_bases__", ()) if get_args(b)), None)
        if not (isinstance(hparams, type) and dataclasses.is_dataclass(hparams)):
            raise TypeError(f"{cls.__name__} must subclass UnlearningMethod[<a dataclass of its hyper-parameters>]")
        if name in _METHODS and _METHODS[name].__qualname__ != cls.__qualname__:
            raise ValueError(f"unlearning method {name!r} registered twice")
        cls.name, cls.HParams = name, hparams
        _METHODS[name] = cls
        return cls

    return decorate


def registered() -> tuple[str, ...]:
    """Registered method names, sorted (the order ``unlearning.methods=all`` runs them in)."""
    return tuple(sorted(_METHODS))


def method_class(name: str) -> type[UnlearningMethod[Any]]:
    if name not in _METHODS:
        raise KeyError(f"unknown unlearning method {name!r}; allowed: {', '.join(registered())}")
    return _METHODS[name]


def create(name: str, cfg: Config) -> UnlearningMethod[Any]:
    """The method ``name`` with its parameters from ``cfg.unlearning.<name>``."""
    return method_class(name)(getattr(cfg.unlearning, name))


def config_file(cls: type[UnlearningMethod[Any]]) -> Path:
    if cls.config_file is not None:
        return Path(cls.config_file)
    return Path(str(importlib.resources.files("fedunlearn.conf") / "unlearning" / f"{cls.name}.yaml"))


def discover() -> None:
    """Import (and so register) every built-in method, installed plugin and ``FEDUNLEARN_PLUGINS`` module."""
    import fedunlearn.unlearning.methods as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        entry.load()
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        importlib.import_module(module)


def run_schema() -> type[Config]:
    """The ``Config`` schema with one typed ``unlearning.<name>`` section per registered method."""
    sections = [(n, _METHODS[n].HParams, dataclasses.field(default_factory=_METHODS[n].HParams)) for n in registered()]
    unlearning = dataclasses.make_dataclass("UnlearningConfig", sections, bases=(UnlearningConfig,))
    schema = dataclasses.make_dataclass(
        "RunConfig", [("unlearning", unlearning, dataclasses.field(default_factory=unlearning))], bases=(Config,)
    )
    return schema


def schema_with_defaults() -> DictConfig:
    """``run_schema()`` filled with each method's YAML (what ``conf/config.yaml`` extends as ``base_config``)."""
    node = OmegaConf.structured(run_schema())
    values = {name: OmegaConf.load(config_file(_METHODS[name])) for name in registered()}
    merged = OmegaConf.merge(node, {"unlearning": values})
    assert isinstance(merged, DictConfig)
    return merged
