"""results.json: a run's ``RunResult`` written and read through the one codec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedunlearn.history.writer import atomic_write
from fedunlearn.results.codec import decode, encode
from fedunlearn.results.model import RunResult

RESULTS_FILE = "results.json"


def to_json(result: RunResult) -> dict[str, Any]:
    """The results.json document of ``result``."""
    return dict(encode(result))


def from_json(doc: dict[str, Any]) -> RunResult:
    """A RunResult from a results.json document (a file from an older release: fields it lacks take empty values)."""
    return decode(RunResult, doc)


def write_results(run_dir: Path, result: RunResult) -> Path:
    path = Path(run_dir) / RESULTS_FILE
    atomic_write(path, json.dumps(to_json(result), indent=2).encode())
    return path


def load(path: Path) -> RunResult:
    return from_json(json.loads(Path(path).read_text()))
