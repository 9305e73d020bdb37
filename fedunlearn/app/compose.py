"""The config a run uses, composed once: Hydra's composition, the typed schema with every registered method, and
the checks; a Hydra composition error becomes one ConfigError naming its key."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, cast

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedunlearn.config import Config, ConfigError, Rule, validate
from fedunlearn.unlearning import create, registered
from fedunlearn.unlearning.registry import discover, schema_with_defaults


def register_configs() -> None:
    """Register every unlearning method and the schema ``conf/config.yaml`` extends as ``base_config``."""
    discover()
    ConfigStore.instance().store(name="base_config", node=schema_with_defaults())


register_configs()


def _method_rule(name: str) -> Rule:
    return lambda cfg, methods: create(name, cfg).validate(cfg, methods)


def load_config(dcfg: DictConfig) -> Config:
    """The typed, validated config; raises ConfigError naming the bad key."""
    try:
        cfg = cast(Config, OmegaConf.to_object(dcfg))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        raise ConfigError(str(key), str(err).splitlines()[0]) from None
    _no_unknown_keys(dcfg, cfg)
    validate(cfg, registered(), _method_rule)
    return cfg


def _no_unknown_keys(node: Any, typed: Any, prefix: str = "") -> None:
    """A key added with ``+key=value`` that the schema does not have is an error, not silently dropped."""
    if not isinstance(node, DictConfig) or not dataclasses.is_dataclass(typed):
        return
    fields = {f.name for f in dataclasses.fields(typed)}
    for key in map(str, node):
        if key not in fields and key != "hydra":
            raise ConfigError(f"{prefix}{key}", "no such key (`fedunlearn --cfg job` prints every key)")
        _no_unknown_keys(node[key], getattr(typed, key), f"{prefix}{key}.")


def compose(overrides: list[str]) -> DictConfig:
    """The config ``fedunlearn <overrides>`` composes, before typing and validation."""
    register_configs()  # methods registered since import (e.g. a plugin imported by a notebook) join the schema
    with initialize_config_module("fedunlearn.conf", version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def compose_config(overrides: list[str]) -> Config:
    """The validated config that ``fedunlearn <overrides>`` would run with (for tests, benchmarks, notebooks)."""
    return load_config(compose(overrides))


def container(dcfg: DictConfig) -> dict[str, Any]:
    """The resolved config as results.json's ``config`` holds it."""
    return cast(dict[str, Any], OmegaConf.to_container(dcfg, resolve=True))


def config_container(overrides: list[str]) -> dict[str, Any]:
    """``fedunlearn <overrides>``'s resolved config, as results.json's ``config`` holds it."""
    return container(compose(overrides))


def hydra_error(err: Exception, overrides: list[str]) -> ConfigError:
    """One ConfigError, naming the key, for an error Hydra raised while composing the config."""
    cause = err.__cause__
    key = getattr(cause, "full_key", None)
    if key and type(cause).__name__ == "ConfigAttributeError":
        return ConfigError(str(key), "no such key (`fedunlearn --cfg job` prints every key)")
    if key:
        return ConfigError(str(key), one_line(cause) if cause is not None else one_line(err))
    text = str(err)
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        available = re.search(rf"Available options in '{re.escape(group)}':\n(.*?)(\n\S|\Z)", text, re.S)
        options = ", ".join(available.group(1).split()) if available else "see conf/" + group
        return ConfigError(group, f"no option {option!r}; available: {options}")
    culprit = next((o for o in overrides if o in text or o.split("=")[0] in text), overrides[0] if overrides else "")
    return ConfigError(culprit.split("=")[0].lstrip("+~") or "overrides", one_line(err))


def one_line(err: BaseException) -> str:
    """An exception's first line (its type's name when it has no text)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
