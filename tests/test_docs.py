"""The README documents what the code offers: every config key, every registered method, every results field."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

from fedunlearn.config import Config
from fedunlearn.unlearning.registry import registered

README = (Path(__file__).parent.parent / "README.md").read_text()


def leaf_keys(cls: type, prefix: str = "") -> list[str]:
    """Every leaf key under the config dataclass ``cls`` (``unlearning``: only its ``methods``)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        if name == "unlearning":
            keys.append("unlearning.methods")
        elif dataclasses.is_dataclass(hints[f.name]):
            keys += leaf_keys(hints[f.name], f"{name}.")
        else:
            keys.append(name)
    return keys


def documented(key: str) -> bool:
    """``key`` is in the config table: as itself, or as ``.last`` on a row that starts with its section."""
    if f"`{key}`" in README or (key.endswith(".name") and f"`{key[: -len('.name')]}`" in README):
        return True
    section, _, last = key.rpartition(".")
    rows = [line for line in README.splitlines() if line.startswith(f"| `{section}.")]
    return any(f"`.{last}`" in row for row in rows)


def test_every_config_key_is_in_the_readme() -> None:
    keys = leaf_keys(Config)
    assert len(keys) > 40
    missing = [k for k in keys if not documented(k)]
    assert not missing, f"README's configuration table lacks {missing}"


def test_every_method_is_in_the_readme_table() -> None:
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", README, flags=re.MULTILINE))
    missing = sorted(set(registered()) - rows)
    assert not missing, f"README's methods table lacks {missing}"
