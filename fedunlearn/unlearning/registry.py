"""Method name → implementation, and the ``unlearning`` config section built from what registered.

A method module registers its class with ``@register``; its parameters' values live in its YAML
(``conf/unlearning/<name>.yaml`` for the package's own methods, ``config_file`` for others). ``discover`` imports
every module of this package, the entry points of group ``fedunlearn.methods`` and the modules named in the
``FEDUNLEARN_PLUGINS`` environment variable (comma-separated), so adding a method edits no list.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.resources
import os
import pkgutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fedunlearn.config import Config, UnlearningConfig
from fedunlearn.unlearning.base import UnlearningMethod

_METHODS: dict[str, type[UnlearningMethod[Any]]] = {}
PLUGINS_ENV = "FEDUNLEARN_PLUGINS"
ENTRY_POINTS = "fedunlearn.methods"


def register(cls: type[UnlearningMethod[Any]]) -> type[UnlearningMethod[Any]]:
    """Class decorator: make ``cls`` available as ``unlearning.methods=[<cls.name>]``."""
    if cls.name in _METHODS and _METHODS[cls.name] is not cls:
        raise ValueError(f"unlearning method {cls.name!r} registered twice")
    if not dataclasses.is_dataclass(cls.Params):
        raise TypeError(f"{cls.__name__}.Params must be a dataclass")
    _METHODS[cls.name] = cls
    return cls


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
    import fedunlearn.unlearning as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        entry.load()
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        importlib.import_module(module)


def run_schema() -> type[Config]:
    """The ``Config`` schema with one typed ``unlearning.<name>`` section per registered method."""
    sections = [(n, _METHODS[n].Params, dataclasses.field(default_factory=_METHODS[n].Params)) for n in registered()]
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
