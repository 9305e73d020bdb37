"""The documentation says what the code offers — every config key, every registered method, every results field —
and the README is a front door with the two commands CI runs (which also builds the docs site, warnings as
errors)."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

from fedunlearn.config import Config
from fedunlearn.unlearning.registry import discover, registered

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))


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


def documented(key: str, text: str) -> bool:
    """``key`` is in a config table: as itself, or as ``.last`` on a row that starts with its section."""
    if f"`{key}`" in text or (key.endswith(".name") and f"`{key[: -len('.name')]}`" in text):
        return True
    section, _, last = key.rpartition(".")
    rows = [line for line in text.splitlines() if line.startswith(f"| `{section}.")]
    return any(f"`.{last}`" in row for row in rows)


def test_every_config_key_is_documented() -> None:
    keys = leaf_keys(Config)
    assert len(keys) > 40
    missing = [k for k in keys if not documented(k, DOCS)]
    assert not missing, f"docs/running.md's configuration table lacks {missing}"


def test_every_method_is_in_the_methods_table() -> None:
    discover()
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", (ROOT / "docs" / "methods.md").read_text(), flags=re.MULTILINE))
    missing = sorted(set(registered()) - rows)
    assert not missing, f"docs/methods.md's table lacks {missing}"


def test_the_readme_is_a_front_door() -> None:
    """At most 250 lines; its first code block is the two commands, and CI runs the second exactly."""
    assert len(README.splitlines()) <= 250
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block is not None
    commands = block.group(1).strip().splitlines()
    assert len(commands) == 2 and commands[0].endswith(" && fedunlearn")
    assert (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1] == commands[1]
    for target in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)(?:#[\w-]+)?\)", README):
        assert (ROOT / target).exists(), target


def test_no_page_is_left_with_a_placeholder() -> None:
    """A line that is one upper-case word (RESULTS_X) is a figure still to be filled in."""
    pages = {p.name: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    left = [f"{name}: {line}" for name, text in pages.items() for line in text.splitlines()
            if re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+", line.strip())]  # fmt: skip
    assert left == []
